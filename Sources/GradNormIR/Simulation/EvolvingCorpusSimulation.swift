import Foundation
import TransformerLite

/// Runs the evolving-corpus simulation on BEIR-style corpora with one base retriever.
///
/// Each strategy owns a retriever version (the base, or the base updated at the sessions its rule
/// chose). Versions with the same history are the same model: they are trained, embedded and
/// evaluated once and shared (the work is still counted for every strategy that owns them).
public final class EvolvingCorpusSimulation {
    public let config: SimulationConfig
    public let sessions: [SimulationSession]
    /// The retriever every strategy starts from.
    public let base: Retriever
    /// `Fingerprint.of(dataset:)` of each domain the run uses, by name: what a resumed run compares.
    public let domainFingerprints: [String: String]
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
        self.base = base
        var prints: [String: String] = [:]
        for name in Set(config.familiar + config.arrivalOrder) { prints[name] = Fingerprint.of(dataset: datasets[name]!) }
        domainFingerprints = prints
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
            total += Metrics.queryRecall(relevant: Set(relevantOfQuery[q]!.filter { $0 < end }), retrieved: h.map(\.index))
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
    private func detect(_ detector: TriggerDetector, version v: Version, session s: Int) throws -> (Double, Double) {
        if let d = v.detection["\(detector)@\(s)"] { return d }
        let start = Date()
        let end = sessionStart[s]
        let newDocs = Array(sessionStart[s - 1]..<end)
        let knownDocs = known(v)
        let embeddings = documentEmbeddings(v, upTo: end)
        let seed = Seed.indexed(config.seed, s)
        var ratio: Double
        switch detector {
        case .gradnormir:
            var scoring = config.scoring
            scoring.seed = seed
            let index = try CorpusIndex(tokenIds: Array(tokenIds[0..<end]), embeddings: embeddings,
                                        dimension: v.retriever.config.hiddenSize, config: scoring)
            let scorer = GradNormScorer(retriever: v.retriever, corpus: index)
            let knownPick = seededSample(count: knownDocs.count, sample: config.knownSample, seed: seed).map { knownDocs[$0] }
            let newPick = seededSample(count: newDocs.count, sample: config.scoredPerSession, seed: Seed.tagged(seed, 1)).map { newDocs[$0] }
            // Side by side, one document per worker.
            let knownScores = scorer.score(documents: knownPick.map { ($0, "\($0)") }).compactMap(\.gradNorm)
            let newScores = scorer.score(documents: newPick.map { ($0, "\($0)") }).compactMap(\.gradNorm)
            guard let threshold = Metrics.mean(knownScores), !newScores.isEmpty else {
                throw GradNormIRError.invalidInput("simulate: S\(s): GradNormIR could score no document (corpus too small for the depths?)")
            }
            ratio = Threshold.oodRatio(newScores, threshold: threshold)
        case .knn, .mahalanobis:
            let halves = seededSample(count: knownDocs.count, sample: knownDocs.count / 2, seed: seed)
            let inFit = Set(halves)
            let fit = knownDocs.indices.filter { inFit.contains($0) }.map { embeddings[knownDocs[$0]] }
            let held = knownDocs.indices.filter { !inFit.contains($0) }.map { embeddings[knownDocs[$0]] }
            let model: OODDetector = detector == .knn
                ? try KNNDistance(reference: fit, k: min(10, fit.count))
                : try Mahalanobis(reference: fit)
            guard let threshold = Metrics.mean(try model.scores(held)) else {
                throw GradNormIRError.invalidInput("simulate: S\(s): too few known documents for \(detector.rawValue)")
            }
            let scores = try model.scores(newDocs.map { embeddings[$0] })
            ratio = Threshold.oodRatio(scores, threshold: threshold)
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
        update.seed = Seed.named(config.seed, key)
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
