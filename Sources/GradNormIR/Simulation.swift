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
    /// The familiar domains of S1, on which the base retriever counts as in-distribution.
    public var familiar: [String] = ["perlfaq", "pythonfaq"]
    /// The domains that arrive later, in a seeded order (see `arrivalOrder`).
    public var arriving: [String] = ["foldoc", "jargon", "vera", "elements", "devil", "wordnet"]
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
    }

    public func validate() throws {
        func bad(_ s: String) -> GradNormIRError { .invalidInput(s) }
        guard sessions >= 2 else { throw bad("--sessions must be at least 2") }
        guard documentsPerSession >= 2 else { throw bad("--documents-per-session must be at least 2") }
        guard newDomainShare > 0, newDomainShare <= 1 else { throw bad("the new-domain share must be in (0, 1]") }
        guard !familiar.isEmpty else { throw bad("at least one familiar domain is needed") }
        guard k >= 1 else { throw bad("--k must be at least 1") }
        guard gamma >= 0, gamma < 1 else { throw bad("--gamma must be in [0, 1)") }
        guard scoredPerSession >= 1, knownSample >= 2 else { throw bad("--scored must be ≥ 1 and --known ≥ 2") }
        guard arrivalSessions.allSatisfy({ $0 >= 2 }) else { throw bad("arrivals start at session 2") }
        try scoring.validate()
        try update.validate()
    }

    /// The arriving domains in the order they arrive: a seeded shuffle of `arriving`, as many as
    /// there are arrival sessions within `sessions`.
    public var arrivalOrder: [String] {
        var order = arriving
        var rng = SplitMix64(seed: seed ^ 0x4152_5249_5645)
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

/// The update rules compared.
public enum UpdateStrategy: String, CaseIterable, Codable, Sendable {
    case zeroShot = "zero-shot"
    case naive
    case gradnormir
    case knn
    case mahalanobis

    /// Parses a comma-separated list ("zero-shot,naive,…"), rejecting unknown or repeated names.
    public static func parseList(_ text: String) throws -> [UpdateStrategy] {
        var out: [UpdateStrategy] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let s = UpdateStrategy(rawValue: part) else {
                throw GradNormIRError.invalidInput("--strategies: unknown strategy '\(part)' (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !out.contains(s) else { throw GradNormIRError.invalidInput("--strategies: '\(part)' given twice") }
            out.append(s)
        }
        guard !out.isEmpty else { throw GradNormIRError.invalidInput("--strategies: no strategy given") }
        return out
    }

    /// The detector whose OOD ratio triggers the update (nil: a fixed rule).
    var detector: String? {
        switch self {
        case .zeroShot, .naive: return nil
        default: return rawValue
        }
    }
}

/// One strategy at one session.
public struct StrategySession: Codable, Sendable {
    public let strategy: String
    public let session: Int
    /// OOD ratio of the session's documents by the strategy's detector (nil: no detector or S1).
    public let oodRatio: Double?
    /// Whether the strategy updated its retriever at this session.
    public let updated: Bool
    /// Updates so far, this one included.
    public let updates: Int
    /// Recall@k of all queries seen so far, over all documents seen so far, after the decision.
    public let recall: Double
    /// recall / the session's upper bound, in percent (filled in once every strategy has run).
    public var recallPercent: Double
    /// Seconds spent deciding (detector) and updating at this session, and so far.
    public let detectSeconds: Double
    public let updateSeconds: Double
    public let cumulativeSeconds: Double
    /// Optimiser steps of this session's update (0 if none), and so far.
    public let updateSteps: Int
    public let cumulativeSteps: Int
}

/// One session's results for every strategy.
public struct SessionResult: Codable, Sendable {
    public let session: Int
    public let arriving: String?
    public let documents: Int
    public let cumulativeDocuments: Int
    public let queries: Int
    /// The upper bound: the best Recall@k any compared strategy reached at this session.
    public let upperBound: Double
    public var strategies: [StrategySession]
}

/// Runs the evolving-corpus simulation on BEIR-style corpora with one base retriever.
///
/// Each strategy owns a retriever version (the base, or the base updated at the sessions its rule
/// chose). Versions with the same history are the same model: they are trained, embedded and
/// evaluated once and shared (the work is still counted for every strategy that owns them).
public final class EvolvingCorpusSimulation {
    public let config: SimulationConfig
    public let sessions: [SimulationSession]
    private let log: (String) -> Void

    /// Global document g (position in session order) → text and token ids (at the scoring length).
    private var texts: [String] = []
    private var tokenIds: [[Int]] = []
    /// Global index where each session's documents begin, and one past the end.
    private var sessionStart: [Int] = []
    /// For each global document, the ids of its relevant queries (domain-qualified).
    private var queriesOfDocument: [[String]] = []
    private var queryText: [String: String] = [:]
    /// Relevant global documents per query.
    private var relevantOfQuery: [String: [Int]] = [:]

    private final class Version {
        let key: String
        let retriever: Retriever
        /// Global documents this version was updated on.
        let trainedOn: [Int]
        var documentEmbeddings: [[Float]] = []
        var queryEmbeddings: [String: [Float]] = [:]
        var recallAt: [Int: Double] = [:]
        var detection: [String: (ratio: Double, seconds: Double)] = [:]
        /// (seconds, steps) of the update that made this version from its parent.
        let updateCost: (seconds: Double, steps: Int)
        init(key: String, retriever: Retriever, trainedOn: [Int], updateCost: (Double, Int)) {
            self.key = key
            self.retriever = retriever
            self.trainedOn = trainedOn
            self.updateCost = updateCost
        }
    }
    private var versions: [String: Version] = [:]

    public init(base: Retriever, datasets: [String: BEIRDataset], config: SimulationConfig,
                log: @escaping (String) -> Void = { _ in }) throws {
        try config.validate()
        self.config = config
        self.log = log
        self.sessions = try Self.plan(datasets: datasets, config: config)
        let m = try base.validatedMaxLength(config.scoring.maxLength)
        for s in sessions {
            sessionStart.append(texts.count)
            for d in s.documents {
                let data = datasets[d.domain]!
                let doc = data.corpus[d.index]
                texts.append(doc.fullText)
                tokenIds.append(base.tokenizer.encode(doc.fullText, maxLength: m))
                var qs: [String] = []
                for local in data.relevantQueries(of: doc.id) {
                    let q = "\(d.domain)/\(local)"
                    qs.append(q)
                    relevantOfQuery[q, default: []].append(texts.count - 1)
                    if queryText[q] == nil { queryText[q] = data.queries[data.queryIndex[local]!].text }
                }
                queriesOfDocument.append(qs)
            }
        }
        sessionStart.append(texts.count)
        versions["base"] = Version(key: "base", retriever: base, trainedOn: [], updateCost: (0, 0))
    }

    /// The sessions: S1 holds the familiar domains (evenly); at each arrival session a new domain
    /// brings `newDomainShare` of the documents and the domains seen so far the rest; the other
    /// sessions draw from the domains seen so far. Each domain's documents (those with at least one
    /// relevant query) are drawn without replacement in a seeded order; the seen domains share a
    /// session round-robin, skipping exhausted ones (a session may then be smaller).
    public static func plan(datasets: [String: BEIRDataset], config: SimulationConfig) throws -> [SimulationSession] {
        let order = config.arrivalOrder
        for name in config.familiar + order where datasets[name] == nil {
            throw GradNormIRError.invalidInput("simulation: corpus '\(name)' is not loaded")
        }
        var pools: [String: [Int]] = [:]
        for (name, data) in datasets {
            var usable = data.corpus.indices.filter { !data.relevantQueries(of: data.corpus[$0].id).isEmpty }
            var rng = SplitMix64(seed: config.seed ^ FNV1a64.of(name))
            seededShuffle(&usable, rng: &rng)
            pools[name] = usable
        }
        var cursor: [String: Int] = [:]
        func take(_ name: String) -> SimulationDocument? {
            let c = cursor[name, default: 0]
            guard let pool = pools[name], c < pool.count else { return nil }
            cursor[name] = c + 1
            return SimulationDocument(domain: name, index: pool[c])
        }
        func roundRobin(_ names: [String], _ count: Int, startingAt offset: Int) -> [SimulationDocument] {
            var out: [SimulationDocument] = []
            var i = offset, misses = 0
            while out.count < count && misses < names.count {
                if let d = take(names[i % names.count]) { out.append(d); misses = 0 } else { misses += 1 }
                i += 1
            }
            return out
        }
        var seen = config.familiar
        var arrivals = order.makeIterator()
        var result: [SimulationSession] = []
        let n = config.documentsPerSession
        for s in 1...config.sessions {
            var docs: [SimulationDocument] = []
            var arriving: String?
            if s == 1 {
                docs = roundRobin(config.familiar, n, startingAt: 0)
            } else if config.arrivalSessions.contains(s), let new = arrivals.next() {
                arriving = new
                let fresh = Int((Double(n) * config.newDomainShare).rounded())
                for _ in 0..<fresh { if let d = take(new) { docs.append(d) } }
                docs += roundRobin(seen, n - docs.count, startingAt: s)
                seen.append(new)
            } else {
                docs = roundRobin(seen, n, startingAt: s)
            }
            if docs.isEmpty {
                throw GradNormIRError.invalidInput("simulation: the corpora ran out of documents at session \(s)")
            }
            result.append(SimulationSession(number: s, arriving: arriving, documents: docs))
        }
        return result
    }

    /// Runs every strategy through every session. `onSession` receives each session's results as
    /// soon as they are complete (for incremental output).
    ///
    /// `done` resumes an interrupted run: the results of its first sessions, as `onSession` gave
    /// them. Their decisions are replayed (the models they updated are retrained — the training is
    /// seeded, so they are the same models — but nothing is scored or evaluated again), and the run
    /// goes on with the next session; `onSession` is called for the new sessions only. The result
    /// equals an uninterrupted run's, but for the recorded seconds of the replayed sessions.
    public func run(strategies: [UpdateStrategy], resumingFrom done: [SessionResult] = [],
                    onSession: (SessionResult) throws -> Void = { _ in }) throws -> [SessionResult] {
        var current = Dictionary(uniqueKeysWithValues: strategies.map { ($0, "base") })
        var updates = Dictionary(uniqueKeysWithValues: strategies.map { ($0, 0) })
        var seconds = Dictionary(uniqueKeysWithValues: strategies.map { ($0, 0.0) })
        var steps = Dictionary(uniqueKeysWithValues: strategies.map { ($0, 0) })
        var results: [SessionResult] = []
        guard done.count <= sessions.count else {
            throw GradNormIRError.invalidInput("simulate: \(done.count) sessions recorded, but the run has \(sessions.count)")
        }
        for (i, r) in done.enumerated() {
            guard r.session == i + 1, r.strategies.map(\.strategy) == strategies.map(\.rawValue) else {
                throw GradNormIRError.invalidInput("simulate: recorded session \(i + 1) does not belong to this run (session \(r.session), strategies \(r.strategies.map(\.strategy)))")
            }
            for (strategy, row) in zip(strategies, r.strategies) {
                if row.updated { current[strategy]! += "+S\(r.session)" }
                updates[strategy] = row.updates
                seconds[strategy] = row.cumulativeSeconds
                steps[strategy] = row.cumulativeSteps
            }
            results.append(r)
        }
        if !done.isEmpty { log("simulate: resuming after S\(done.count)") }
        for session in sessions.dropFirst(done.count) {
            let s = session.number
            var rows: [StrategySession] = []
            for strategy in strategies {
                var version = try self.version(current[strategy]!)
                var ratio: Double?
                var detectSeconds = 0.0
                var update = false
                if s >= 2 {
                    switch strategy {
                    case .zeroShot: update = false
                    case .naive: update = true
                    default:
                        let (r, t) = try detect(strategy.detector!, version: version, session: s)
                        ratio = r
                        detectSeconds = t
                        update = r > config.gamma
                        log("simulate: S\(s) \(strategy.rawValue): OOD ratio \(fmt2(r)) (γ \(fmt2(config.gamma))) → \(update ? "update" : "keep")")
                    }
                }
                var updateSeconds = 0.0, updateSteps = 0
                if update {
                    version = try updated(version, session: s)
                    updateSeconds = version.updateCost.seconds
                    updateSteps = version.updateCost.steps
                    updates[strategy]! += 1
                    current[strategy] = version.key
                }
                seconds[strategy]! += detectSeconds + updateSeconds
                steps[strategy]! += updateSteps
                let recall = try self.recall(version, session: s)
                rows.append(StrategySession(strategy: strategy.rawValue, session: s, oodRatio: ratio, updated: update,
                                            updates: updates[strategy]!, recall: recall, recallPercent: 0,
                                            detectSeconds: detectSeconds, updateSeconds: updateSeconds,
                                            cumulativeSeconds: seconds[strategy]!, updateSteps: updateSteps,
                                            cumulativeSteps: steps[strategy]!))
            }
            let upper = rows.map(\.recall).max() ?? 0
            for i in rows.indices { rows[i].recallPercent = upper > 0 ? 100 * rows[i].recall / upper : 0 }
            let end = sessionStart[s]
            let result = SessionResult(session: s, arriving: session.arriving, documents: session.documents.count,
                                       cumulativeDocuments: end, queries: queriesSeen(upTo: end).count,
                                       upperBound: upper, strategies: rows)
            results.append(result)
            log("simulate: S\(s) done: " + rows.map { "\($0.strategy) \(fmt2(100 * $0.recall))%\($0.updated ? " (updated)" : "")" }.joined(separator: ", "))
            try onSession(result)
        }
        return results
    }

    // MARK: - Pieces

    /// The queries with a relevant document among the first `end` global documents, sorted.
    private func queriesSeen(upTo end: Int) -> [String] {
        Set(queriesOfDocument[0..<end].joined()).sorted()
    }

    /// Search embeddings of the first `end` documents under `v`, computed once per document.
    private func documentEmbeddings(_ v: Version, upTo end: Int) -> [[Float]] {
        if v.documentEmbeddings.count < end {
            let start = v.documentEmbeddings.count
            v.documentEmbeddings += v.retriever.searchEmbeddings(ids: Array(tokenIds[start..<end]))
        }
        return Array(v.documentEmbeddings[0..<end])
    }

    /// Recall@k (mean over queries of |relevant ∩ top-k| / |relevant|) of the queries seen by
    /// session s over the documents seen by session s.
    private func recall(_ v: Version, session s: Int) throws -> Double {
        if let r = v.recallAt[s] { return r }
        let end = sessionStart[s]
        let docs = documentEmbeddings(v, upTo: end)
        let queries = queriesSeen(upTo: end)
        let missing = queries.filter { v.queryEmbeddings[$0] == nil }
        if !missing.isEmpty {
            let e = try v.retriever.searchEmbeddings(missing.map { queryText[$0]! }, maxLength: config.scoring.maxLength)
            for (q, x) in zip(missing, e) { v.queryEmbeddings[q] = x }
        }
        let index = VectorIndex(dimension: v.retriever.config.hiddenSize, vectors: docs)
        let hits = index.search(queries.map { v.queryEmbeddings[$0]! }, k: min(config.k, end))
        var total = 0.0
        for (q, h) in zip(queries, hits) {
            let relevant = relevantOfQuery[q]!.filter { $0 < end }
            let top = Set(h.map(\.index))
            total += Double(relevant.filter { top.contains($0) }.count) / Double(relevant.count)
        }
        let r = queries.isEmpty ? 0 : total / Double(queries.count)
        v.recallAt[s] = r
        return r
    }

    /// The documents `v` counts as in-distribution: S1's and those it was updated on.
    private func known(_ v: Version) -> [Int] {
        Array(0..<sessionStart[1]) + v.trainedOn
    }

    /// OOD ratio of session s's documents by `detector` under `v`, and the seconds it took.
    /// GradNormIR: `scoredPerSession` new documents and `knownSample` known ones are scored in the
    /// index of every document seen so far (one regime for both); threshold = mean known score.
    /// Embedding baselines: fitted on a seeded half of the known documents, threshold = mean score
    /// of the other half; every new document is scored.
    private func detect(_ detector: String, version v: Version, session s: Int) throws -> (Double, Double) {
        if let d = v.detection["\(detector)@\(s)"] { return d }
        let start = Date()
        let end = sessionStart[s]
        let newDocs = Array(sessionStart[s - 1]..<end)
        let knownDocs = known(v)
        let embeddings = documentEmbeddings(v, upTo: end)
        let seed = config.seed ^ (UInt64(s) &* 0x9E37_79B9_7F4A_7C15)
        var ratio: Double
        switch detector {
        case "gradnormir":
            var scoring = config.scoring
            scoring.seed = seed
            let index = try CorpusIndex(ids: Array(tokenIds[0..<end]), embeddings: embeddings,
                                        dimension: v.retriever.config.hiddenSize, config: scoring)
            let scorer = GradNormScorer(retriever: v.retriever, corpus: index)
            let knownPick = seededSample(count: knownDocs.count, sample: config.knownSample, seed: seed).map { knownDocs[$0] }
            let newPick = seededSample(count: newDocs.count, sample: config.scoredPerSession, seed: seed ^ 1).map { newDocs[$0] }
            let knownScores = knownPick.compactMap { scorer.score(document: $0, id: "\($0)").gradNorm }
            let newScores = newPick.compactMap { scorer.score(document: $0, id: "\($0)").gradNorm }
            guard let threshold = Metrics.mean(knownScores), !newScores.isEmpty else {
                throw GradNormIRError.invalidInput("simulate: S\(s): GradNormIR could score no document (corpus too small for the depths?)")
            }
            ratio = Double(newScores.filter { $0 > threshold }.count) / Double(newScores.count)
        default:
            let halves = seededSample(count: knownDocs.count, sample: knownDocs.count / 2, seed: seed)
            let inFit = Set(halves)
            let fit = knownDocs.indices.filter { inFit.contains($0) }.map { embeddings[knownDocs[$0]] }
            let held = knownDocs.indices.filter { !inFit.contains($0) }.map { embeddings[knownDocs[$0]] }
            let model: OODDetector = detector == "knn"
                ? try KNNDistance(reference: fit, k: min(10, fit.count))
                : try Mahalanobis(reference: fit)
            guard let threshold = Metrics.mean(try model.scores(held)) else {
                throw GradNormIRError.invalidInput("simulate: S\(s): too few known documents for \(detector)")
            }
            let scores = try model.scores(newDocs.map { embeddings[$0] })
            ratio = Double(scores.filter { $0 > threshold }.count) / Double(max(1, scores.count))
        }
        let result = (ratio, Date().timeIntervalSince(start))
        v.detection["\(detector)@\(s)"] = result
        return result
    }

    /// The version named `key` ("base", "base+S2", "base+S2+S5", …), trained along its history
    /// if it is not built yet (when a run resumes).
    private func version(_ key: String) throws -> Version {
        if let v = versions[key] { return v }
        guard let cut = key.range(of: "+S", options: .backwards), let s = Int(key[cut.upperBound...]),
              s >= 2, s <= sessions.count else {
            throw GradNormIRError.invalidInput("simulate: bad model history '\(key)'")
        }
        return try updated(try version(String(key[..<cut.lowerBound])), session: s)
    }

    /// `v` updated on session s's documents (trained once per history, then shared).
    private func updated(_ v: Version, session s: Int) throws -> Version {
        let key = v.key + "+S\(s)"
        if let done = versions[key] { return done }
        let docs = Array(sessionStart[s - 1]..<sessionStart[s])
        var update = config.update
        update.seed = config.seed ^ FNV1a64.of(key)
        let start = Date()
        log("simulate: S\(s): updating \(v.key) on \(docs.count) documents")
        let (retriever, summary) = try UnsupervisedUpdate.run(retriever: v.retriever, documents: docs.map { texts[$0] },
                                                              config: update)
        let version = Version(key: key, retriever: retriever, trainedOn: v.trainedOn + docs,
                              updateCost: (Date().timeIntervalSince(start), summary.steps))
        versions[key] = version
        return version
    }
}

private func fmt2(_ x: Double) -> String { String(format: "%.2f", x) }
