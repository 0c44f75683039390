import Foundation
import TransformerLite

/// Ground truth and detection accuracy on a BEIR-style dataset.
public enum Evaluation {
    /// Per-document recall@k of the retriever: every query retrieves (by cosine: inner product of
    /// L2-normalised embeddings) from the documents that have at least one relevant query — the
    /// authors' setting — and recall(d) is the share of d's relevant queries whose top k contain d.
    /// Returns the recall indexed like `dataset.corpus`, the normal embeddings of every document,
    /// and each document's 1-based rank in the ranking of each of its relevant queries (in
    /// `relevantQueries(of:)` order; nil below `rankDepth`, which is at least k).
    /// `documentEmbeddings`, when given, are the corpus's search embeddings already computed at
    /// the same maximum length (e.g. by a `CorpusIndex`), so they are not computed again.
    public static func groundTruth(dataset: BEIRDataset, retriever: Retriever, k: Int, maxLength: Int? = nil,
                                   documentEmbeddings: [[Float]]? = nil, rankDepth: Int = 0) throws
        -> (recall: DocumentRecall, embeddings: [[Float]], ranks: [[Int?]]) {
        let run = try retrieve(dataset: dataset, retriever: retriever, k: k, depth: rankDepth, maxLength: maxLength,
                               documentEmbeddings: documentEmbeddings)
        let recall = try Metrics.perDocumentRecall(rankings: run.rankings, qrels: run.qrels,
                                                   documentCount: dataset.corpus.count, k: k)
        let queryPosition = Dictionary(uniqueKeysWithValues: run.queries.enumerated().map { ($1.id, $0) })
        let ranks = dataset.corpus.indices.map { d in
            dataset.relevantQueries(of: dataset.corpus[d].id).map { q in
                queryPosition[q].flatMap { run.rankings[$0].firstIndex(of: d) }.map { $0 + 1 }
            }
        }
        return (recall, run.embeddings, ranks)
    }

    /// Recall@k of each query of the dataset that has a relevant document (and passes `include`):
    /// the share of its relevant documents in its top k, retrieving as in `groundTruth` (from the
    /// documents with a relevant query, by cosine). The per-query view `RecallComparison` pairs.
    public static func queryRecall(dataset: BEIRDataset, retriever: Retriever, k: Int, maxLength: Int? = nil,
                                   documentEmbeddings: [[Float]]? = nil,
                                   include: (Query) -> Bool = { _ in true }) throws -> QueryRecall {
        let run = try retrieve(dataset: dataset, retriever: retriever, k: k, depth: k, maxLength: maxLength,
                               documentEmbeddings: documentEmbeddings, include: include)
        guard !run.queries.isEmpty else {
            throw GradNormIRError.invalidInput("\(dataset.folder): no query with a relevant document is selected")
        }
        let recall = run.queries.indices.map { Metrics.queryRecall(relevant: run.qrels[$0]!, retrieved: run.rankings[$0]) }
        return QueryRecall(ids: run.queries.map(\.id), recall: recall, k: k)
    }

    /// Every selected query with a relevant document retrieves its top `depth` (≥ k) from the
    /// documents that have a relevant query. Rankings and qrels are in corpus indices, queries in
    /// the order kept; `embeddings` are the corpus's search embeddings (`documentEmbeddings` when
    /// given, else `Retriever.corpusEmbeddings`).
    private static func retrieve(dataset: BEIRDataset, retriever: Retriever, k: Int, depth: Int, maxLength: Int?,
                                 documentEmbeddings: [[Float]]?, include: (Query) -> Bool = { _ in true })
        throws -> (queries: [Query], rankings: [[Int]], qrels: [Int: Set<Int>], embeddings: [[Float]]) {
        guard k >= 1 else { throw GradNormIRError.invalidSetting(name: "k", reason: "must be at least 1") }
        let m = try retriever.validatedMaxLength(maxLength)
        if let e = documentEmbeddings, e.count != dataset.corpus.count {
            throw GradNormIRError.invalidInput("\(e.count) document embeddings for a corpus of \(dataset.corpus.count)")
        }
        let embeddings = documentEmbeddings
            ?? retriever.corpusEmbeddings(ids: dataset.corpus.map { retriever.tokenizer.encode($0.fullText, maxLength: m) })
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
        // The top `depth` (≥ k) of each query; its first k are the top k (the order is total).
        let rankings = index.search(qEmb, k: max(k, depth)).map { $0.map { pool[$0.index] } }
        return (queries, rankings, qrels, embeddings)
    }

    /// Evaluates GradNormIR scores (by document id; nil = unscored), the embedding baselines
    /// fitted on `reference` embeddings and the query-free `combined` and `density` detectors of
    /// `Predictor`, at equal budget.
    public static func evaluate(dataset: BEIRDataset, retriever: Retriever, scores: [String: Double?],
                                reference: [[Float]]?, threshold: Double?, k: Int = 100,
                                maxLength: Int? = nil, seed: UInt64 = 0,
                                documentEmbeddings: [[Float]]? = nil) throws -> EvaluationReport {
        let (recall, embeddings, ranks) = try groundTruth(
            dataset: dataset, retriever: retriever, k: k, maxLength: maxLength, documentEmbeddings: documentEmbeddings,
            rankDepth: EvaluationReport.rankDepth)
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
        // The query-free detectors of `Predictor`, over the same corpus index.
        let extractor = try SignalExtractor(texts: dataset.corpus.map(\.fullText), embeddings: embeddings,
                                            tokenizer: retriever.tokenizer)
        let signals = extractor.signals(of: docs)
        for (name, s) in [("combined", signals.map { FailureModel.default.probability($0) }), ("density", signals.map(\.density))] {
            add(name, s, flagged: Metrics.topK(scores: s, k: budget))
        }
        let failures = labels.filter { $0 }.count
        let everyRecall = rec.compactMap { $0 }
        return EvaluationReport(dataset: dataset.folder, documents: dataset.corpus.count, evaluated: docs.count,
                                failures: failures, k: k, meanRecall: r.reduce(0, +) / Double(r.count),
                                corpusRecall: everyRecall.reduce(0, +) / Double(max(1, everyRecall.count)),
                                drrAll: allDRR, threshold: threshold, detectors: results,
                                outcomes: docs.indices.map { i in
                                    let d = docs[i]
                                    return DocumentOutcome(id: dataset.corpus[d].id, gradNorm: gradScores[i], recall: r[i],
                                                           queries: dataset.relevantQueries(of: dataset.corpus[d].id),
                                                           ranks: ranks[d])
                                })
    }
}
