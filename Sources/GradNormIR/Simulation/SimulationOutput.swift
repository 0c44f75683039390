import Foundation

/// The output folder of a simulation, written as the run goes and resumed after an interruption:
///
///     sessions.jsonl       one line per finished session (durable, see `ResumableLines`)
///     simulate.meta.json   the settings (model, data folder, config, strategies)
///     simulate.md          the Markdown report   } rewritten after every session
///     simulate.json        everything as JSON    }
///     simulate.svg         recall per session    }
///
/// Opening a folder that holds the sessions of the same settings keeps them (`results`), so the
/// run goes on after them (`EvolvingCorpusSimulation.run(strategies:resumingFrom:onSession:)`);
/// a folder of other settings is refused with `.resumeMismatch`, unless `startOver` discards it.
public final class SimulationOutput {
    public let folder: String
    /// The finished sessions: those found when the folder was opened, then those appended.
    public private(set) var results: [SessionResult]
    private let lines: ResumableLines
    private let simulation: EvolvingCorpusSimulation
    private let model: String

    /// What a resumed run must share with the interrupted one: the fingerprints of the model and
    /// of every domain, the settings and the strategies (the paths are kept for people).
    struct RunMeta: Codable {
        let model: String
        let modelFingerprint: String
        let data: String
        let domainFingerprints: [String: String]
        let config: SimulationConfig
        let strategies: [String]

        /// In words, what differs from `recorded` (paths aside).
        func differences(from recorded: RunMeta) -> [String] {
            var out: [String] = []
            if recorded.modelFingerprint != modelFingerprint {
                out.append("the model changed (fingerprint \(recorded.modelFingerprint), now \(modelFingerprint))")
            }
            for name in Set(recorded.domainFingerprints.keys).union(domainFingerprints.keys).sorted()
            where recorded.domainFingerprints[name] != domainFingerprints[name] {
                out.append("domain '\(name)' changed (fingerprint \(recorded.domainFingerprints[name] ?? "none"), "
                           + "now \(domainFingerprints[name] ?? "none"))")
            }
            if recorded.config != config { out.append("other simulation settings") }
            if recorded.strategies != strategies {
                out.append("strategies \(recorded.strategies.joined(separator: ",")), now \(strategies.joined(separator: ","))")
            }
            return out
        }
    }

    /// Opens (creating it if needed) `folder` for `simulation` on the domains under `data` with
    /// `strategies`.
    public init(folder: String, simulation: EvolvingCorpusSimulation, data: String,
                strategies: [UpdateStrategy], startOver: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: folder, isDirectory: &isDir), !isDir.boolValue {
            throw GradNormIRError.invalidInput("\(folder): exists and is not a folder")
        }
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        self.folder = folder
        self.simulation = simulation
        self.model = simulation.base.checkpoint.folder
        let linesPath = Self.path(folder, "sessions.jsonl"), metaPath = Self.path(folder, "simulate.meta.json")
        let run = RunMeta(model: model, modelFingerprint: simulation.base.fingerprint, data: data,
                          domainFingerprints: simulation.domainFingerprints, config: simulation.config,
                          strategies: strategies.map(\.rawValue))
        let meta = String(decoding: try Self.encoder.encode(run), as: UTF8.self)
        if startOver {
            try? fm.removeItem(atPath: linesPath)
            try? fm.removeItem(atPath: metaPath)
        }
        var done: [SessionResult] = []
        lines = try ResumableLines(path: linesPath, metaPath: metaPath, meta: meta, mismatch: "", differences: { recorded in
            (try? JSONDecoder().decode(RunMeta.self, from: Data(recorded.utf8))).map(run.differences(from:))
        }) { lineNumber, line in
            do {
                done.append(try JSONDecoder().decode(SessionResult.self, from: line))
            } catch {
                throw GradNormIRError.resumeMismatch(
                    path: "\(linesPath):\(lineNumber)", reason: "not a session result (\(error.localizedDescription))")
            }
        }
        results = done
    }

    /// Whether every session of the simulation is already in the folder.
    public var isComplete: Bool { results.count >= simulation.sessions.count }

    /// Records one finished session (its line, forced to disk) and rewrites the reports.
    public func append(_ result: SessionResult) throws {
        results.append(result)
        try lines.append(String(decoding: try Self.encoder.encode(result), as: UTF8.self))
        try writeReports()
    }

    /// Writes the Markdown report, the JSON and the plot of the sessions so far; returns the
    /// Markdown.
    @discardableResult
    public func writeReports() throws -> String {
        let config = simulation.config
        let md = SimulationReport.markdown(results, config: config, model: (model as NSString).lastPathComponent)
        try md.write(toFile: Self.path(folder, "simulate.md"), atomically: true, encoding: .utf8)
        try SimulationReport.json(results, config: config, sessions: simulation.sessions, model: model)
            .write(to: URL(fileURLWithPath: Self.path(folder, "simulate.json")), options: .atomic)
        try SimulationReport.svg(results).write(toFile: Self.path(folder, "simulate.svg"), atomically: true, encoding: .utf8)
        return md
    }

    private static var encoder: JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return enc
    }

    private static func path(_ folder: String, _ name: String) -> String {
        (folder as NSString).appendingPathComponent(name)
    }
}

extension EvolvingCorpusSimulation {
    /// Loads the domains `config` uses (the familiar ones and those that arrive), each a BEIR
    /// folder named after it under `folder`.
    public static func loadDomains(folder: String, config: SimulationConfig) throws -> [String: BEIRDataset] {
        var datasets: [String: BEIRDataset] = [:]
        for name in Set(config.familiar + config.arrivalOrder) {
            datasets[name] = try BEIRDataset.load(folder: (folder as NSString).appendingPathComponent(name))
        }
        return datasets
    }

    /// One line describing the run's plan: arrival order and session sizes.
    public var planSummary: String {
        "arrival order " + zip(config.arrivalSessions, config.arrivalOrder).map { "S\($0) \($1)" }.joined(separator: ", ")
            + "; sessions of " + sessions.map { "\($0.documents.count)" }.joined(separator: "/") + " documents"
    }
}
