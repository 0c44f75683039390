import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay an evolving corpus (sessions S1…Sn) and compare update strategies by recall and compute.",
        discussion: """
            S1 holds the familiar domains; new domains arrive at the arrival sessions in a seeded order, among \
            documents of the domains already seen. Each strategy (zero-shot: never update; naive: update every \
            session; gradnormir / knn / mahalanobis: update when that detector's OOD ratio of the new session \
            exceeds --gamma) indexes every session, updates when its rule says so (unsupervised InfoNCE on the \
            session's documents), and is measured by Recall@k of every query seen so far. Writes, in --out: \
            sessions.jsonl (one line per finished session, as it finishes), simulate.json, simulate.md and \
            simulate.svg (recall per session, the article's figure), and simulate.meta.json (the settings). \
            After an interruption, rerun the same command: it goes on after the last finished session (the models \
            that session had updated are retrained, same seed, same models). Other settings in the same --out are \
            refused; --restart starts over.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "Folder holding one BEIR-style folder per domain (built by `make setup`).")
    var data: String = "data/corpora"
    @Option(help: "Output folder.")
    var out: String = "results/simulate"
    @Option(help: "Comma-separated familiar domains of S1 (folders under --data).",
            transform: CommaList.parser { "'\($0)' is not a domain name" })
    var familiar = CommaList(SimulationConfig().familiar)
    @Option(help: "Comma-separated domains that arrive later (their order is a seeded shuffle).",
            transform: CommaList.parser { "'\($0)' is not a domain name" })
    var arriving = CommaList(SimulationConfig().arriving)
    @Option(name: .long, help: "Comma-separated sessions at which a new domain arrives.",
            transform: CommaList.parser { "'\($0)' is not a number" })
    var arrivalSessions = CommaList(SimulationConfig().arrivalSessions)
    @Option(parsing: .unconditional, help: "Number of sessions.") var sessions: Int = 10
    @Option(name: .long, parsing: .unconditional, help: "Documents added per session.") var documentsPerSession: Int = 60
    @Option(parsing: .unconditional, help: "Update when the new session's OOD ratio exceeds this.") var gamma: Double = 0.5
    @Option(parsing: .unconditional, help: "Recall@k.") var k: Int = 10
    @Option(help: "Comma-separated strategies: zero-shot, naive, gradnormir, knn, mahalanobis.",
            transform: CommaList.parser {
                "unknown strategy '\($0)' (known: \(UpdateStrategy.allCases.map(\.rawValue).joined(separator: ", ")))"
            })
    var strategies = CommaList(UpdateStrategy.allCases)
    @Option(parsing: .unconditional, help: "New-session documents GradNormIR scores per decision.") var scored: Int = 8
    @Option(parsing: .unconditional, help: "Known documents GradNormIR scores per decision (its threshold).") var known: Int = 8
    @Option(parsing: .unconditional, help: "GradNormIR positives per document.") var positives: Int = 4
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens of documents and queries (indexing, scoring, updating).") var maxLength: Int = 128
    @Option(parsing: .unconditional, help: "Epochs of each update over the session's documents.") var epochs: Int = 2
    @Option(parsing: .unconditional, help: "Learning rate of the updates.") var lr: Double?
    @Option(name: .long, parsing: .unconditional, help: "Batch size of the updates (in-batch negatives).") var batchSize: Int = SimulationConfig().update.batchSize
    @Option(help: "Batches of the updates: random (the authors' shuffle) or neighbours (hard in-batch negatives).")
    var batching: UpdateBatching = UpdateConfig().batching
    @Option(help: "Positive of the updates' query crops: rest (inverse cloze; `update`'s default) or document (the authors').")
    var positive: UpdatePositive = UpdateConfig().positive
    @Option(parsing: .unconditional, help: "Seed of every draw.") var seed: UInt64 = 0
    @Flag(help: "Discard the results already in --out and start from S1.") var restart = false

    /// Library setting names that this command spells otherwise.
    static let vocabulary = CommandVocabulary(
        options: ["scoredPerSession": "scored", "knownSample": "known", "learningRate": "lr"],
        resumeHint: "use --restart to start it over, or another --out")

    func validate() throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isFolder), !isFolder.boolValue {
            throw OptionError("--out \(out): exists and is not a folder")
        }
        guard Set(familiar.values).isDisjoint(with: arriving.values) else {
            throw OptionError("--familiar and --arriving share a domain")
        }
        try validating(Self.vocabulary) { try config.validate() }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let config = self.config
            let model = try options.load()
            let datasets = try EvolvingCorpusSimulation.loadDomains(folder: data, config: config)
            let simulation = try EvolvingCorpusSimulation(base: model, datasets: datasets, config: config, log: note)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let lock = try OutputLock(path: OutputLock.path(forFolder: out))
            defer { withExtendedLifetime(lock) {} }
            let output = try SimulationOutput(folder: out, simulation: simulation, data: data,
                                              strategies: strategies.values, startOver: restart)
            note("simulate: " + simulation.planSummary)
            if output.isComplete {
                note("simulate: \(out) already holds all \(output.results.count) sessions")
            } else {
                _ = try simulation.run(strategies: strategies.values, resumingFrom: output.results) { try output.append($0) }
            }
            print(try output.writeReports())
            note("simulate: \(output.results.count) sessions written to \(out)")
        }
    }

    var config: SimulationConfig {
        var c = SimulationConfig()
        c.sessions = sessions
        c.familiar = familiar.values
        c.arriving = arriving.values
        c.arrivalSessions = arrivalSessions.values
        c.documentsPerSession = documentsPerSession
        c.gamma = gamma
        c.k = k
        c.scoredPerSession = scored
        c.knownSample = known
        c.scoring.positives = positives
        c.scoring.maxLength = maxLength
        c.update.maxLength = maxLength
        c.update.epochs = epochs
        if let lr { c.update.learningRate = lr }
        c.update.batchSize = batchSize
        c.update.batching = batching
        c.update.positive = positive
        c.seed = seed
        c.scoring.seed = seed
        return c
    }
}
