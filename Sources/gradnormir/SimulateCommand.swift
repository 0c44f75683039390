import ArgumentParser
import Foundation
import GradNormIR
import TransformerLite

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
    @Option(help: "Comma-separated familiar domains of S1 (folders under --data).")
    var familiar: String = "perlfaq,pythonfaq"
    @Option(help: "Comma-separated domains that arrive later (their order is a seeded shuffle).")
    var arriving: String = "foldoc,jargon,vera,elements,devil,wordnet"
    @Option(name: .long, help: "Comma-separated sessions at which a new domain arrives.")
    var arrivalSessions: String = "2,3,5,6,8,9"
    @Option(help: "Number of sessions.") var sessions: Int = 10
    @Option(name: .long, help: "Documents added per session.") var documentsPerSession: Int = 60
    @Option(help: "Update when the new session's OOD ratio exceeds this.") var gamma: Double = 0.5
    @Option(help: "Recall@k.") var k: Int = 10
    @Option(help: "Comma-separated strategies: zero-shot, naive, gradnormir, knn, mahalanobis.")
    var strategies: String = "zero-shot,naive,gradnormir,knn,mahalanobis"
    @Option(help: "New-session documents GradNormIR scores per decision.") var scored: Int = 8
    @Option(help: "Known documents GradNormIR scores per decision (its threshold).") var known: Int = 8
    @Option(help: "GradNormIR positives per document.") var positives: Int = 4
    @Option(name: .long, help: "Maximum tokens of documents and queries (indexing, scoring, updating).") var maxLength: Int = 128
    @Option(help: "Epochs of each update over the session's documents.") var epochs: Int = 2
    @Option(help: "Learning rate of the updates.") var lr: Double?
    @Option(name: .long, help: "Batch size of the updates (in-batch negatives).") var batchSize: Int = 16
    @Option(help: "Batches of the updates: random (the authors' shuffle) or neighbours (hard in-batch negatives).")
    var batching: UpdateBatching = .random
    @Option(help: "Positive of the updates' query crops: document (the authors') or rest (inverse cloze).")
    var positive: UpdatePositive = .document
    @Option(help: "Seed of every draw.") var seed: UInt64 = 0
    @Flag(help: "Discard the results already in --out and start from S1.") var restart = false

    func run() throws {
        try reportingErrors {
            let config = try makeConfig()
            let chosen = try UpdateStrategy.parseList(strategies)
            let model = try options.load()
            let (result, markdown) = try SimulationReport.runAndWrite(model: model, config: config, strategies: chosen,
                                                       data: data, out: out, restart: restart, log: note)
            print(markdown)
            note("simulate: \(result.count) sessions written to \(out)")
        }
    }

    func makeConfig() throws -> SimulationConfig {
        var c = SimulationConfig()
        c.sessions = sessions
        func names(_ text: String, _ flag: String) throws -> [String] {
            let xs = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard Set(xs).count == xs.count else { throw GradNormIRError.invalidInput("\(flag): a name is given twice") }
            return xs
        }
        c.familiar = try names(familiar, "--familiar")
        c.arriving = try names(arriving, "--arriving")
        guard Set(c.familiar).isDisjoint(with: c.arriving) else {
            throw GradNormIRError.invalidInput("--familiar and --arriving share a domain")
        }
        c.arrivalSessions = try names(arrivalSessions, "--arrival-sessions").map { t in
            guard let v = Int(t) else { throw GradNormIRError.invalidInput("--arrival-sessions: '\(t)' is not a number") }
            return v
        }
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
        try c.validate()
        return c
    }
}
