import Foundation

/// One detector's accuracy on a corpus (METHOD.md §"Ground truth and metrics").
public struct DetectorResult: Sendable, Encodable {
    public let name: String
    /// Documents flagged (GradNormIR: above its threshold; baselines: their own top-K, K = GradNormIR's).
    public let flagged: Int
    /// DRR of the flagged set (lower = the flagged documents are really the ones the retriever misses).
    public let drr: Double?
    /// AUROC of the score against "recall(d) < 1", threshold-free, with a bootstrap 95% interval.
    public let auroc: Double?
    public let aurocCI: (low: Double, high: Double)?

    enum CodingKeys: String, CodingKey { case name, flagged, drr, auroc, aurocCI = "auroc_ci95" }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(flagged, forKey: .flagged)
        try c.encode(drr, forKey: .drr)
        try c.encode(auroc, forKey: .auroc)
        try c.encode(aurocCI.map { [$0.low, $0.high] }, forKey: .aurocCI)
    }
}

/// One evaluated document: its GradNormIR score and the ground truth.
/// One evaluated document; encodes as the JSON line `{"_id", "score", "recall", "failed",
/// "queries", "ranks"}` (the command line's per-document output).
public struct DocumentOutcome: Sendable, Equatable, Encodable {
    public let id: String
    public let gradNorm: Double
    /// recall@k of the document: the share of its relevant queries whose top k contain it.
    public let recall: Double
    /// Its relevant queries (qrels order) and its 1-based rank in each one's ranking, nil when
    /// below `EvaluationReport.rankDepth`.
    public let queries: [String]
    public let ranks: [Int?]
    /// recall(d) < 1: the retriever misses d for some relevant query.
    public var failed: Bool { recall < 1 }

    enum CodingKeys: String, CodingKey { case id = "_id", score, recall, failed, queries, ranks }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(gradNorm, forKey: .score)
        try c.encode(recall, forKey: .recall)
        try c.encode(failed, forKey: .failed)
        try c.encode(queries, forKey: .queries)
        try c.encode(ranks, forKey: .ranks)
    }
}

/// The evaluation of one scored corpus.
public struct EvaluationReport: Sendable, Encodable {
    /// How deep every query's ranking is kept for the documents' ranks (`DocumentOutcome.ranks`).
    public static let rankDepth = 100

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

    /// The report as one JSON line (outcomes left out; a non-finite number is null).
    public var json: String {
        do { return try JSONLineEncoder().encode(self) } catch {
            preconditionFailure("EvaluationReport: \(error)")  // numbers and strings always encode
        }
    }

    enum CodingKeys: String, CodingKey {
        case dataset, documents, evaluated, failures, k, meanRecall = "mean_recall", corpusRecall = "corpus_recall"
        case drrAll = "drr_all", threshold, detectors
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(documents, forKey: .documents)
        try c.encode(evaluated, forKey: .evaluated)
        try c.encode(failures, forKey: .failures)
        try c.encode(k, forKey: .k)
        try c.encode(meanRecall, forKey: .meanRecall)
        try c.encode(corpusRecall, forKey: .corpusRecall)
        try c.encode(drrAll, forKey: .drrAll)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(detectors, forKey: .detectors)
    }

    /// A Markdown table of the same figures.
    public var table: String {
        func f(_ x: Double?, _ d: Int = 3) -> String { x.map { String(format: "%.\(d)f", $0) } ?? "–" }
        var table = MarkdownTable(["detector", "flagged", "DRR", "AUROC (95% CI)"])
        table.add(["all documents", "\(evaluated)", f(drrAll), "–"])
        for d in detectors {
            let ci = d.aurocCI.map { " (\(f($0.low, 2))–\(f($0.high, 2)))" } ?? ""
            table.add([d.name, "\(d.flagged)", f(d.drr), f(d.auroc) + ci])
        }
        return "\(dataset): \(evaluated) of \(documents) documents evaluated, \(failures) with recall@\(k) < 1, "
            + "mean recall@\(k) \(f(meanRecall))\n\n" + table.render(aligned: false)
    }
}
