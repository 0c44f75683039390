import Foundation
import TransformerLite

// The evolving-corpus experiment (METHOD.md §"Update strategies"): documents arrive in sessions
// S1 → Sn; each strategy indexes every session, updates the retriever when its rule says so, and is
// measured by Recall@k of all queries seen so far over all documents seen so far.

/// Settings of one simulation. Every draw (session contents, samples scored by the detectors, the
/// updates' batches) is seeded from `seed`.
public struct SimulationConfig: Codable, Sendable, Equatable {
    /// Number of sessions (S1 … Sn).
    public var sessions: Int = 10
    /// Documents added per session.
    public var documentsPerSession: Int = 60
    /// Share of an arrival session's documents that come from the arriving domain (the rest come
    /// from domains already seen).
    public var newDomainShare: Double = 0.75
    /// The familiar domains of S1, on which the base retriever counts as in-distribution. The
    /// default is natural data (scripts/build_debdesc.py): English package descriptions with their
    /// synopses as queries.
    public var familiar: [String] = ["debdesc-lang/en"]
    /// The domains that arrive later, in a seeded order (see `arrivalOrder`). The default: package
    /// descriptions in five other languages (`debdesc-unseen`: packages outside `debdesc-lang`, so
    /// none is a translation of an S1 document) and the weakest large English section, games
    /// (recall@10 0.80 against 0.95 for the descriptions of S1; 84 of its packages are also in S1).
    public var arriving: [String] = ["debdesc-unseen/de", "debdesc-unseen/fr", "debdesc-unseen/ja",
                                     "debdesc-unseen/ru", "debdesc-unseen/uk", "debdesc/games"]
    /// The sessions at which a new domain arrives, in order; the others bring only familiar domains.
    public var arrivalSessions: [Int] = [2, 3, 5, 6, 8, 9]
    /// Recall@k of all queries seen so far.
    public var k: Int = 10
    /// A detector-triggered strategy updates when the OOD ratio of the new session exceeds γ.
    public var gamma: Double = 0.5
    /// New-session documents GradNormIR scores per decision.
    public var scoredPerSession: Int = 8
    /// Known (in-distribution) documents GradNormIR scores per decision for its threshold.
    public var knownSample: Int = 8
    /// GradNormIR's settings (also the maximum length of indexing and of the queries).
    public var scoring: ScoringConfig
    /// The unsupervised update run when a strategy updates (on the new session's documents).
    public var update: UpdateConfig
    public var seed: UInt64 = 0

    public init() {
        scoring = ScoringConfig()
        scoring.positives = 4
        scoring.maxLength = 128
        update = UpdateConfig()
        update.maxLength = 128
        update.epochs = 2
        // Sessions are small (60 documents by default, 48 in the bench): at `update`'s default
        // batch (64, chosen on corpora of 1,000) an epoch would be a single step; batches of 16
        // give 3–4 steps per epoch.
        update.batchSize = 16
    }

    public func validate() throws {
        func bad(_ name: String, _ reason: String) -> GradNormIRError { .invalidSetting(name: name, reason: reason) }
        guard sessions >= 2 else { throw bad("sessions", "must be at least 2") }
        guard documentsPerSession >= 2 else { throw bad("documentsPerSession", "must be at least 2") }
        guard newDomainShare > 0, newDomainShare <= 1 else { throw bad("newDomainShare", "must be in (0, 1]") }
        guard !familiar.isEmpty else { throw bad("familiar", "needs at least one domain") }
        guard k >= 1 else { throw bad("k", "must be at least 1") }
        guard gamma >= 0, gamma < 1 else { throw bad("gamma", "must be in [0, 1)") }
        guard scoredPerSession >= 1 else { throw bad("scoredPerSession", "must be at least 1") }
        guard knownSample >= 2 else { throw bad("knownSample", "must be at least 2") }
        guard arrivalSessions.allSatisfy({ $0 >= 2 }) else { throw bad("arrivalSessions", "must all be at least 2 (S1 holds the familiar domains)") }
        try scoring.validate()
        try update.validate()
    }

    /// The arriving domains in the order they arrive: a seeded shuffle of `arriving`, as many as
    /// there are arrival sessions within `sessions`.
    public var arrivalOrder: [String] {
        var order = arriving
        var rng = SplitMix64(seed: Seed.tagged(seed, Seed.arrivalTag))
        seededShuffle(&order, rng: &rng)
        let slots = arrivalSessions.filter { $0 <= sessions }.count
        return Array(order.prefix(slots))
    }
}

/// A document of the simulation: its domain (corpus folder name) and position in that corpus.
public struct SimulationDocument: Sendable, Equatable, Codable {
    public let domain: String
    public let index: Int
}

/// One session: the documents it adds and the domain that arrives with it, if any.
public struct SimulationSession: Sendable, Equatable, Codable {
    public let number: Int
    public let arriving: String?
    public let documents: [SimulationDocument]
}
