import Foundation
import GradNormIR
import TransformerLite

/// Section 4 (opt-in, `--sections simulate`): the evolving-corpus replay of `gradnormir simulate`
/// on its default stream (package descriptions: English, then five other languages and the games
/// section) at a size that finishes in under 20 minutes on 2 cores (6.8 on an idle machine with the
/// inverse-cloze update default, 9.7 with the authors' task, 15.8 with another job beside it): 10 sessions of 48 documents, GradNormIR scoring 6 new and 6 known documents per decision.
/// `--quick`: 4 sessions of 20 documents, 3 + 3 scored.
enum SimulateBench {
    static func config(quick: Bool) -> SimulationConfig {
        var c = SimulationConfig()
        c.sessions = quick ? 4 : 10
        c.documentsPerSession = quick ? 20 : 48
        c.scoredPerSession = quick ? 3 : 6
        c.knownSample = quick ? 3 : 6
        c.seed = 0
        return c
    }

    /// Runs every strategy from S1 (any earlier output in `out/simulate` is discarded) and returns
    /// the section's part of bench.json.
    static func run(model: Retriever, dataDir: String, quick: Bool, out: String) throws -> [String: Any] {
        let c = config(quick: quick)
        let folder = (out as NSString).appendingPathComponent("simulate")
        let start = Date()
        let simulation = try EvolvingCorpusSimulation(base: model, datasets: try EvolvingCorpusSimulation.loadDomains(folder: dataDir, config: c),
                                                      config: c, log: note)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lock = try OutputLock(path: OutputLock.path(forFolder: folder))
        defer { withExtendedLifetime(lock) {} }
        let output = try SimulationOutput(folder: folder, simulation: simulation, data: dataDir,
                                          strategies: UpdateStrategy.allCases, startOver: true)
        note("simulate: " + simulation.planSummary)
        let results = try simulation.run(strategies: UpdateStrategy.allCases) { try output.append($0) }
        let markdown = try output.writeReports()
        let seconds = Date().timeIntervalSince(start)
        print("")
        print(markdown)
        print("Simulation: \(results.count) sessions in \(fmt(seconds / 60, 1)) min on \(BLAS.engineThreads) threads; "
              + "sessions.jsonl, simulate.json, simulate.md and simulate.svg in \(folder)")
        let json = try JSONSerialization.jsonObject(
            with: SimulationReport.json(results, config: c, sessions: simulation.sessions, model: model.checkpoint.folder))
        return ["seconds": seconds, "folder": folder, "report": json]
    }
}
