import Foundation
import TransformerLite

/// The GradNormIR score of one document (METHOD.md step 6).
public struct DocumentScore: Sendable, Equatable, Encodable {
    public let id: String
    /// Mean of the record gradient norms; nil when the document has no valid record.
    public let gradNorm: Double?
    /// Number of valid records averaged.
    public let records: Int
    /// Mean InfoNCE loss of the records (nil with no record).
    public let meanLoss: Double?
    /// Why the document is unscored (nil when scored).
    public let reason: String?

    /// The JSON line written for it: `{"_id", "gradnorm" (number or null), "records", "loss"[, "reason"]}`.
    public var jsonLine: String {
        do { return try JSONLineEncoder().encode(self) } catch {
            preconditionFailure("DocumentScore: \(error)")  // numbers and strings always encode
        }
    }

    enum CodingKeys: String, CodingKey { case id = "_id", gradNorm = "gradnorm", records, meanLoss = "loss", reason }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(gradNorm, forKey: .gradNorm)
        try c.encode(records, forKey: .records)
        try c.encode(meanLoss, forKey: .meanLoss)
        try c.encodeIfPresent(reason, forKey: .reason)
    }
}

/// Scores documents of a corpus: positives by dropout self-retrieval, hard negatives from the
/// positives' neighbourhoods, and the mean record gradient norm. One scorer per thread.
public final class GradNormScorer {
    public let corpus: CorpusIndex
    private let records: RecordGradient

    /// The sentence pooling of the retriever (the positives' query is pooled the same way).
    private let pooling: EncoderConfig.Pooling

    /// `memory`: what each record's forward keeps for its backward (the scores do not depend on it).
    public init(retriever: Retriever, corpus: CorpusIndex, memory: ActivationMemory = .saveAll) {
        self.corpus = corpus
        self.records = RecordGradient(retriever: retriever, memory: memory)
        self.pooling = retriever.config.pooling
    }

    /// Scores document `d` of the corpus (deterministic: its dropout mask depends only on the
    /// config's seed and d).
    public func score(document d: Int, id: String) -> DocumentScore {
        guard corpus.tokenIds[d].count > 2 else {
            return DocumentScore(id: id, gradNorm: nil, records: 0, meanLoss: nil,
                                 reason: "no content tokens: the text reduces to [CLS] [SEP]")
        }
        let query = records.encodeQuery(corpus.tokenIds[d])
        let pos = corpus.positives(of: d, query: query, pooling: pooling)
        let plans = corpus.records(of: d, positives: pos)
        if plans.isEmpty {
            let reason = pos.isEmpty ? "no positive: the corpus has no other document"
                : "no positive has \(corpus.config.negatives) negatives outside the document's neighbourhood"
            return DocumentScore(id: id, gradNorm: nil, records: 0, meanLoss: nil, reason: reason)
        }
        var norm = 0.0, loss = 0.0
        for p in plans {
            let r = records.compute(query: query, positive: corpus.tokenIds[p.positive],
                                    negatives: p.negatives.map { corpus.tokenIds[$0] },
                                    temperature: corpus.config.temperature)
            norm += r.gradNorm
            loss += r.loss
        }
        let k = Double(plans.count)
        guard norm.isFinite, loss.isFinite else {
            return DocumentScore(id: id, gradNorm: nil, records: plans.count, meanLoss: nil,
                                 reason: "non-finite loss or gradient")
        }
        return DocumentScore(id: id, gradNorm: norm / k, records: plans.count, meanLoss: loss / k, reason: nil)
    }
}
