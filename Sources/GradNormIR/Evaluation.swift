import Foundation
import TransformerLite

/// One detector's accuracy on a corpus (METHOD.md §"Ground truth and metrics").
public struct DetectorResult: Sendable {
    public let name: String
    /// Documents flagged (GradNormIR: above its threshold; baselines: their own top-K, K = GradNormIR's).
    public let flagged: Int
    /// DRR of the flagged set (lower = the flagged documents are really the ones the retriever misses).
    public let drr: Double?
    /// AUROC of the score against "recall(d) < 1", threshold-free, with a bootstrap 95% interval.
    public let auroc: Double?
    public let aurocCI: (low: Double, high: Double)?
}

/// One evaluated document: its GradNormIR score and the ground truth.
public struct DocumentOutcome: Sendable, Equatable {
    public let id: String
    public let gradNorm: Double
    public let recall: Double
    /// recall(d) < 1: the retriever misses d for some relevant query.
    public var failed: Bool { recall < 1 }
}

/// The evaluation of one scored corpus.
public struct EvaluationReport: Sendable {
    public let dataset: String
    /// Documents in the corpus, and those evaluated (scored, and with at least one relevant query).
    public let documents: Int
    public let evaluated: Int
    /// Evaluated documents the retriever misses for at least one relevant query (recall@k < 1).
    public let failures: Int
    public let k: Int
    /// Mean recall@k over the evaluated documents, and DRR over all of them (the reference row).
    public let meanRecall: Double
    /// Mean recall@k over every document of the corpus with a relevant query (scored or not):
    /// the retriever's actual quality on the corpus.
    public let corpusRecall: Double
    public let drrAll: Double?
    public let threshold: Double?
    public let detectors: [DetectorResult]
    /// The evaluated documents, in corpus order (not part of `json`).
    public let outcomes: [DocumentOutcome]

    public var json: String {
        func num(_ x: Double?) -> String { x.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        let dets = detectors.map { d in
            "{\"name\": \(JSONLines.quote(d.name)), \"flagged\": \(d.flagged), \"drr\": \(num(d.drr)), "
                + "\"auroc\": \(num(d.auroc)), \"auroc_ci95\": "
                + (d.aurocCI.map { "[\(num($0.low)), \(num($0.high))]" } ?? "null") + "}"
        }
        return "{\"dataset\": \(JSONLines.quote(dataset)), \"documents\": \(documents), \"evaluated\": \(evaluated), "
            + "\"failures\": \(failures), \"k\": \(k), \"mean_recall\": \(num(meanRecall)), \"corpus_recall\": \(num(corpusRecall)), "
            + "\"drr_all\": \(num(drrAll)), \"threshold\": \(num(threshold)), "
            + "\"detectors\": [\(dets.joined(separator: ", "))]}"
    }

    /// A Markdown table of the same figures.
    public var table: String {
        func f(_ x: Double?, _ d: Int = 3) -> String { x.map { String(format: "%.\(d)f", $0) } ?? "–" }
        var lines = ["\(dataset): \(evaluated) of \(documents) documents evaluated, \(failures) with recall@\(k) < 1, "
                     + "mean recall@\(k) \(f(meanRecall))",
                     "",
                     "| detector | flagged | DRR | AUROC (95% CI) |",
                     "|---|---|---|---|",
                     "| all documents | \(evaluated) | \(f(drrAll)) | – |"]
        for d in detectors {
            let ci = d.aurocCI.map { " (\(f($0.low, 2))–\(f($0.high, 2)))" } ?? ""
            lines.append("| \(d.name) | \(d.flagged) | \(f(d.drr)) | \(f(d.auroc))\(ci) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// Ground truth and detection accuracy on a BEIR-style dataset.
public enum Evaluation {
    /// Per-document recall@k of the retriever: every query retrieves (by cosine: inner product of
    /// L2-normalised embeddings) from the documents that have at least one relevant query — the
    /// authors' setting — and recall(d) is the share of d's relevant queries whose top k contain d.
    /// Returns the recall indexed like `dataset.corpus` and the normal embeddings of every document.
    /// `documentEmbeddings`, when given, are the corpus's search embeddings already computed at
    /// the same maximum length (e.g. by a `CorpusIndex`), so they are not computed again.
    public static func groundTruth(dataset: BEIRDataset, retriever: Retriever, k: Int, maxLength: Int? = nil,
                                   documentEmbeddings: [[Float]]? = nil) throws -> (recall: DocumentRecall, embeddings: [[Float]]) {
        let run = try retrieve(dataset: dataset, retriever: retriever, k: k, maxLength: maxLength,
                               documentEmbeddings: documentEmbeddings)
        let recall = try Metrics.perDocumentRecall(rankings: run.rankings, qrels: run.qrels,
                                                   documentCount: dataset.corpus.count, k: k)
        return (recall, run.embeddings)
    }

    /// Recall@k of each query of the dataset that has a relevant document (and passes `include`):
    /// the share of its relevant documents in its top k, retrieving as in `groundTruth` (from the
    /// documents with a relevant query, by cosine). The per-query view `RecallComparison` pairs.
    public static func queryRecall(dataset: BEIRDataset, retriever: Retriever, k: Int, maxLength: Int? = nil,
                                   include: (Query) -> Bool = { _ in true }) throws -> QueryRecall {
        let run = try retrieve(dataset: dataset, retriever: retriever, k: k, maxLength: maxLength,
                               documentEmbeddings: nil, include: include)
        guard !run.queries.isEmpty else {
            throw GradNormIRError.invalidInput("\(dataset.folder): no query with a relevant document is selected")
        }
        let recall = run.queries.indices.map { qi -> Double in
            let relevant = run.qrels[qi]!
            return Double(relevant.intersection(run.rankings[qi]).count) / Double(relevant.count)
        }
        return QueryRecall(ids: run.queries.map(\.id), recall: recall, k: k)
    }

    /// Every selected query with a relevant document retrieves its top k from the documents that
    /// have a relevant query. Rankings and qrels are in corpus indices, queries in the order kept;
    /// `embeddings` are the corpus's search embeddings (`documentEmbeddings` when given).
    private static func retrieve(dataset: BEIRDataset, retriever: Retriever, k: Int, maxLength: Int?,
                                 documentEmbeddings: [[Float]]?, include: (Query) -> Bool = { _ in true })
        throws -> (queries: [Query], rankings: [[Int]], qrels: [Int: Set<Int>], embeddings: [[Float]]) {
        guard k >= 1 else { throw GradNormIRError.invalidInput("--k must be at least 1") }
        let m = try retriever.validatedMaxLength(maxLength)
        if let e = documentEmbeddings, e.count != dataset.corpus.count {
            throw GradNormIRError.invalidInput("\(e.count) document embeddings for a corpus of \(dataset.corpus.count)")
        }
        let embeddings = try documentEmbeddings ?? retriever.searchEmbeddings(dataset.corpus.map(\.fullText), maxLength: m)
        let pool = dataset.corpus.indices.filter { !dataset.relevantQueries(of: dataset.corpus[$0].id).isEmpty }
        guard !pool.isEmpty else {
            throw GradNormIRError.invalidInput("\(dataset.folder): no document has a relevant query in \(dataset.qrelsPath)")
        }
        let index = VectorIndex(dimension: retriever.config.hiddenSize, vectors: pool.map { embeddings[$0] })
        let queries = dataset.queries.filter { !dataset.relevantDocuments(of: $0.id).isEmpty && include($0) }
        var qrels: [Int: Set<Int>] = [:]
        for (qi, q) in queries.enumerated() {
            qrels[qi] = Set(dataset.relevantDocuments(of: q.id).compactMap { dataset.documentIndex[$0] })
        }
        guard !queries.isEmpty else { return (queries, [], qrels, embeddings) }
        let qEmb = try retriever.searchEmbeddings(queries.map(\.text), maxLength: m)
        let rankings = index.search(qEmb, k: k).map { $0.map { pool[$0.index] } }
        return (queries, rankings, qrels, embeddings)
    }

    /// Evaluates GradNormIR scores (by document id; nil = unscored) and the embedding baselines
    /// fitted on `reference` embeddings, at equal budget.
    public static func evaluate(dataset: BEIRDataset, retriever: Retriever, scores: [String: Double?],
                                reference: [[Float]]?, threshold: Double?, k: Int = 100,
                                maxLength: Int? = nil, seed: UInt64 = 0,
                                documentEmbeddings: [[Float]]? = nil) throws -> EvaluationReport {
        let (recall, embeddings) = try groundTruth(dataset: dataset, retriever: retriever, k: k, maxLength: maxLength,
                                                   documentEmbeddings: documentEmbeddings)
        let rec = recall.recall
        // Evaluated: scored and with a relevant query.
        let docs = dataset.corpus.indices.filter { i in
            rec[i] != nil && (scores[dataset.corpus[i].id] ?? nil) != nil
        }
        guard !docs.isEmpty else {
            throw GradNormIRError.invalidInput("no document of \(dataset.folder) is both scored and has a relevant query")
        }
        let labels = docs.map { rec[$0]! < 1 }
        let r = docs.map { rec[$0]! }
        let nq = docs.map { recall.relevantQueryCount[$0] }
        let gradScores = docs.map { scores[dataset.corpus[$0].id]!! }
        let allDRR = Metrics.drr(flagged: Array(docs.indices), recall: r, relevantQueryCount: nq)

        // GradNormIR flags above its threshold; without one, the budget is the failure count.
        let flaggedGrad: [Int] = threshold.map { t in docs.indices.filter { gradScores[$0] > t } }
            ?? Metrics.topK(scores: gradScores, k: labels.filter { $0 }.count)
        let budget = flaggedGrad.count
        var results: [DetectorResult] = []
        func add(_ name: String, _ s: [Double], flagged: [Int]) {
            results.append(DetectorResult(
                name: name, flagged: flagged.count,
                drr: Metrics.drr(flagged: flagged, recall: r, relevantQueryCount: nq),
                auroc: Metrics.auroc(scores: s, positives: labels),
                aurocCI: Metrics.aurocCI(scores: s, positives: labels, resamples: 1000, seed: seed)))
        }
        add("GradNormIR", gradScores, flagged: flaggedGrad)
        if let reference {
            let e = docs.map { embeddings[$0] }
            let detectors: [any OODDetector] = [try KNNDistance(reference: reference), try Mahalanobis(reference: reference),
                                                try IPQ(reference: reference, seed: seed)]
            for det in detectors {
                let s = try det.scores(e)
                add(det.name, s, flagged: Metrics.topK(scores: s, k: budget))
            }
        }
        let failures = labels.filter { $0 }.count
        let everyRecall = rec.compactMap { $0 }
        return EvaluationReport(dataset: dataset.folder, documents: dataset.corpus.count, evaluated: docs.count,
                                failures: failures, k: k, meanRecall: r.reduce(0, +) / Double(r.count),
                                corpusRecall: everyRecall.reduce(0, +) / Double(max(1, everyRecall.count)),
                                drrAll: allDRR, threshold: threshold, detectors: results,
                                outcomes: docs.indices.map { DocumentOutcome(id: dataset.corpus[docs[$0]].id,
                                                                             gradNorm: gradScores[$0], recall: r[$0]) })
    }
}

/// Recall@k per query (see `Evaluation.queryRecall`).
public struct QueryRecall: Sendable, Equatable {
    public let ids: [String]
    /// recall@k of `ids[i]`: the share of its relevant documents in its top k.
    public let recall: [Double]
    public let k: Int
    /// The mean over the queries.
    public var mean: Double { recall.reduce(0, +) / Double(max(1, recall.count)) }
}

/// Which queries of a dataset to use: all, or one of two halves fixed by a seeded hash of the
/// query id — so settings can be chosen on the `dev` half and reported on the untouched `test`
/// half. The halves are disjoint, cover every query, and do not depend on file order.
public enum QuerySplit: String, Sendable, CaseIterable {
    case all, dev, test

    public func contains(_ queryId: String, seed: UInt64 = 0) -> Bool {
        switch self {
        case .all: return true
        case .dev, .test:
            var h = FNV1a64()
            h.add(bytes: withUnsafeBytes(of: seed.littleEndian) { Array($0) })
            h.add(bytes: queryId.utf8)
            // The top bit: FNV-1a's low bits mix poorly for ids that differ only in their last byte.
            var mix = SplitMix64(seed: h.value)
            let isDev = (mix.next() >> 63) == 0
            return isDev == (self == .dev)
        }
    }
}

/// Two retrievers' recall@k on the same queries, paired: how many queries the candidate gains
/// or loses against the baseline, and the exact two-sided sign test on those that differ.
public struct RecallComparison: Sendable {
    public let baseline: QueryRecall
    public let candidate: QueryRecall
    /// Queries whose recall@k is higher (lower) with the candidate.
    public let gained: Int
    public let lost: Int
    /// Exact two-sided sign-test p-value of gained vs lost (1 when no query differs).
    public let signTestP: Double

    /// - Throws: `GradNormIRError.invalidInput` when the two runs are not over the same queries.
    public init(baseline: QueryRecall, candidate: QueryRecall) throws {
        guard baseline.ids == candidate.ids, baseline.k == candidate.k else {
            throw GradNormIRError.invalidInput("recall comparison: the two runs cover different queries or depths")
        }
        self.baseline = baseline
        self.candidate = candidate
        var g = 0, l = 0
        for (a, b) in zip(baseline.recall, candidate.recall) {
            if b > a { g += 1 } else if b < a { l += 1 }
        }
        gained = g
        lost = l
        signTestP = Metrics.signTest(gained: g, lost: l)
    }

    public var delta: Double { candidate.mean - baseline.mean }
}
