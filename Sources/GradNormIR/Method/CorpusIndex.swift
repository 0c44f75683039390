import Foundation
import TransformerLite

/// One record of a document: its positive and negatives, as corpus indices.
public struct RecordPlan: Sendable, Equatable {
    public let positive: Int
    public let negatives: [Int]
}

/// The corpus-side state of GradNormIR: token ids and normal embeddings of every document, the
/// exact index over them, and each document's neighbourhood — computed once, shared by all
/// documents' records.
public final class CorpusIndex {
    /// Token ids of every document (special tokens included), truncated to the config's length.
    public let tokenIds: [[Int]]
    public let index: VectorIndex
    /// N(i): the top neighbours of document i (itself excluded), as deep as the deeper of the two
    /// depths of the config.
    public let neighbours: [[Int]]
    public let config: ScoringConfig

    /// Tokenises and embeds `documents` (eval mode, the model's pooling, L2-normalised) and
    /// finds every document's neighbours. `progress` is called with the number of documents embedded.
    public convenience init(documents: [String], retriever: Retriever, config: ScoringConfig,
                            progress: ((Int) -> Void)? = nil) throws {
        let ids = try Self.tokenIds(documents, retriever: retriever, config: config)
        try self.init(tokenIds: ids, embeddings: retriever.corpusEmbeddings(ids: ids, progress: progress),
                      dimension: retriever.config.hiddenSize, config: config)
    }

    /// The index of `documents` over embeddings already computed (a persisted `EmbeddingIndex`
    /// of the same documents at the config's maximum length): the documents are tokenised, not
    /// encoded.
    public convenience init(documents: [String], embeddings: [[Float]], retriever: Retriever,
                            config: ScoringConfig) throws {
        try self.init(tokenIds: try Self.tokenIds(documents, retriever: retriever, config: config), embeddings: embeddings,
                      dimension: retriever.config.hiddenSize, config: config)
    }

    /// The documents' token ids at the config's maximum length (checked first, with the config).
    private static func tokenIds(_ documents: [String], retriever: Retriever, config: ScoringConfig) throws -> [[Int]] {
        try config.validate()
        let m = try retriever.validatedMaxLength(config.maxLength)
        return documents.map { retriever.tokenizer.encode($0, maxLength: m) }
    }

    /// The same from token ids and their (L2-normalised) search embeddings already computed, e.g.
    /// kept across the sessions of an evolving corpus. Only the neighbourhoods are computed here.
    public init(tokenIds ids: [[Int]], embeddings: [[Float]], dimension: Int, config: ScoringConfig) throws {
        try config.validate()
        precondition(ids.count == embeddings.count, "CorpusIndex: one embedding per document")
        self.config = config
        self.tokenIds = ids
        index = VectorIndex(dimension: dimension, vectors: embeddings)
        neighbours = Self.neighbours(in: index, depth: config.neighbourDepth(corpusSize: ids.count))
    }

    /// The index of `other` (same token ids and embeddings, nothing re-encoded) under another
    /// scoring config, e.g. another dropout, temperature or positive count; the neighbourhoods are
    /// searched again when the depths differ. The maximum length must be the same (it decides the
    /// token ids and so the embeddings).
    public init(reusing other: CorpusIndex, config: ScoringConfig) throws {
        try config.validate()
        guard config.maxLength == other.config.maxLength else {
            throw GradNormIRError.invalidInput(
                "cannot reuse an index embedded at \(other.config.maxLength) tokens for max length \(config.maxLength)")
        }
        self.config = config
        tokenIds = other.tokenIds
        index = other.index
        let depth = config.neighbourDepth(corpusSize: tokenIds.count)
        if depth <= other.config.neighbourDepth(corpusSize: tokenIds.count) {
            neighbours = other.neighbours.map { Array($0.prefix(depth)) }
        } else {
            neighbours = Self.neighbours(in: index, depth: depth)
        }
    }

    /// Every row's top `depth` neighbours in `index` (itself excluded), as row numbers.
    private static func neighbours(in index: VectorIndex, depth: Int) -> [[Int]] {
        depth == 0 ? Array(repeating: [], count: index.count)
            : index.search(selfNeighboursOf: Array(0..<index.count), k: depth).map { $0.map(\.index) }
    }

    public var count: Int { tokenIds.count }

    /// The document query's positives (METHOD.md step 2): d's last-layer token states (`query`,
    /// from `RecordGradient.encodeQuery` of d's token ids) with a seeded Bernoulli mask (no
    /// rescaling), pooled without normalisation — mean over all tokens (the authors' mean-pooled
    /// retrievers), or the first token's masked state when the encoder pools by CLS (so the query
    /// lives in the index's space) — searched in the index; d itself dropped; the first n_pos
    /// results.
    public func positives(of d: Int, query: EncodedQuery, pooling: EncoderConfig.Pooling) -> [Int] {
        precondition(query.ids == tokenIds[d], "CorpusIndex.positives: the query is not document \(d)'s encoding")
        let C = index.dimension, T = tokenIds[d].count
        var rng = SplitMix64(seed: Seed.indexed(config.seed, d))
        // The mask covers all T × C states whatever the pooling, so a token's mask does not
        // depend on the pooling mode.
        var mask = [UInt8](repeating: 1, count: T * C)
        if config.dropout > 0 { Dropout.makeMask(&mask, count: T * C, p: config.dropout, rng: &rng) }
        var masked = [Float](repeating: 0, count: T * C)  // (T, C)
        Dropout.forward(out: &masked, input: query.lastHiddenStates, mask: mask, count: T * C,
                        p: config.dropout, rescale: false)
        // Pooled by hand rather than with `Pooling.forward`: the sum is divided by the token
        // count (`Pooling` multiplies by its reciprocal, which rounds differently), as every
        // published score was computed.
        let pooled = pooling == .cls ? 1 : T
        var vector = [Float](repeating: 0, count: C)
        for t in 0..<pooled {
            for k in 0..<C { vector[k] += masked[t * C + k] }
        }
        for k in 0..<C { vector[k] /= Float(pooled) }
        let hits = index.search([vector], k: config.positives + 1)[0]
        return Array(hits.map(\.index).filter { $0 != d }.prefix(config.positives))
    }

    /// The records of document d (METHOD.md step 3): for each positive x, N(x) minus x, the first
    /// remaining neighbour skipped (if configured), minus N(d) and d; the first n_neg remain. A
    /// positive with fewer valid negatives gives no record.
    public func records(of d: Int, positives: [Int]) -> [RecordPlan] {
        let n = count
        let kd = config.exclusionDepth(corpusSize: n), kx = config.candidateDepth(corpusSize: n)
        var excluded = Set(neighbours[d].prefix(kd))
        excluded.insert(d)
        var plans: [RecordPlan] = []
        for x in positives {
            var candidates = neighbours[x].prefix(kx).filter { $0 != x }
            if config.skipFirstNegative, !candidates.isEmpty { candidates.removeFirst() }
            let negs = Array(candidates.filter { !excluded.contains($0) }.prefix(config.negatives))
            if negs.count == config.negatives { plans.append(RecordPlan(positive: x, negatives: negs)) }
        }
        return plans
    }
}
