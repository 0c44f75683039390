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
/// positives' neighbourhoods, and the mean record gradient norm. Not thread-safe: one scorer per
/// thread (`score(documents:)` runs its own workers).
public final class GradNormScorer {
    public let corpus: CorpusIndex
    private let records: RecordGradient
    /// More record workspaces for `score(documents:)`, one per extra worker (made when first needed).
    private var extraRecords: [RecordGradient] = []
    private let retriever: Retriever
    private let memory: ActivationMemory

    /// The sentence pooling of the retriever (the positives' query is pooled the same way).
    private let pooling: EncoderConfig.Pooling

    /// `memory`: what each record's forward keeps for its backward (the scores do not depend on it).
    public init(retriever: Retriever, corpus: CorpusIndex, memory: ActivationMemory = .saveAll) {
        self.corpus = corpus
        self.records = RecordGradient(retriever: retriever, memory: memory)
        self.pooling = retriever.config.pooling
        self.retriever = retriever
        self.memory = memory
    }

    /// How many documents a caller that writes results as it goes (e.g. a resumable file) should
    /// hand `score(documents:)` at a time: two per worker (so a worker that finishes early takes
    /// another), one on a single worker.
    public static var documentsPerBatch: Int { Parallel.available == 1 ? 1 : 2 * Parallel.available }

    /// Scores several documents side by side, one per worker (`Parallel.available` at most, each
    /// on its own core with single-threaded products), rather than splitting each record's products
    /// over the workers. Returns the scores in the order given; each is what
    /// `score(document:id:)` gives on one worker. Memory: one record workspace per worker.
    public func score(documents: [(index: Int, id: String)]) -> [DocumentScore] {
        let w = min(Parallel.available, documents.count)
        if w <= 1 { return Parallel.alone { documents.map { score(document: $0.index, id: $0.id, with: records) } } }
        while extraRecords.count < w - 1 { extraRecords.append(RecordGradient(retriever: retriever, memory: memory)) }
        let workspaces = [records] + extraRecords.prefix(w - 1)
        var out = [DocumentScore?](repeating: nil, count: documents.count)
        let lock = NSLock()
        var next = 0  // the next document not yet taken (documents differ in cost: taken as workers free up)
        out.withUnsafeMutableBufferPointer { buffer in
            let slots = buffer  // each document's slot is written by the one worker that took it
            DispatchQueue.concurrentPerform(iterations: w) { k in
                Parallel.alone {
                    while true {
                        let j: Int = lock.withLock { defer { next += 1 }; return next }
                        guard j < documents.count else { return }
                        slots[j] = score(document: documents[j].index, id: documents[j].id, with: workspaces[k])
                    }
                }
            }
        }
        return out.map { $0! }
    }

    /// Scores document `d` of the corpus (deterministic: its dropout mask depends only on the
    /// config's seed and d).
    public func score(document d: Int, id: String) -> DocumentScore {
        score(document: d, id: id, with: records)
    }

    private func score(document d: Int, id: String, with records: RecordGradient) -> DocumentScore {
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
