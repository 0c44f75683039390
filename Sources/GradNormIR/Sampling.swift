import Foundation
import TransformerLite

/// Settings of GradNormIR document scoring (METHOD.md §"Per-document score"). Defaults follow the
/// paper except where noted; every depth is a parameter.
public struct ScoringConfig: Codable, Sendable, Equatable {
    /// Positives per document (n_pos; the paper's 16).
    public var positives: Int = 16
    /// Negatives per record (n_neg; the paper's 4).
    public var negatives: Int = 4
    /// Dropout probability on the document query's last-layer token states (no rescaling).
    public var dropout: Float = 0.02
    /// InfoNCE temperature τ.
    public var temperature: Double = 0.05
    /// Maximum tokens per sequence, special tokens included.
    public var maxLength: Int = 512
    /// Seed of the dropout masks; document i uses a generator derived from (seed, i).
    public var seed: UInt64 = 0
    /// The authors' quirk: skip the first remaining neighbour of each positive (METHOD.md step 3).
    public var skipFirstNegative: Bool = true
    /// Depth of d's excluded neighbourhood N(d); nil = the size rule `exclusionDepth(corpusSize:)`.
    public var exclusionDepth: Int?
    /// Depth of each positive's candidate neighbourhood N(x); nil = the size rule.
    public var candidateDepth: Int?

    public init() {}

    /// N(d)'s depth: min(100, max(2·n_pos, ⌈|C|/10⌉)). At |C| ≥ 1,000 this is the paper's 100; on
    /// small corpora it stays a tenth of the corpus (so d's neighbourhood cannot swallow it), but
    /// never less than twice the positives (which come from right around d).
    public func exclusionDepth(corpusSize n: Int) -> Int {
        exclusionDepth ?? min(100, max(2 * positives, (n + 9) / 10), max(0, n - 1))
    }

    /// N(x)'s depth: min(100, |C| − 1) — the paper's 100 wherever the corpus allows.
    public func candidateDepth(corpusSize n: Int) -> Int {
        candidateDepth ?? min(100, max(0, n - 1))
    }

    /// How deep each document's neighbour list must go: the deeper of N(d) and N(x).
    func neighbourDepth(corpusSize n: Int) -> Int {
        max(exclusionDepth(corpusSize: n), candidateDepth(corpusSize: n))
    }

    /// Checks the values a user can set.
    public func validate() throws {
        func bad(_ s: String) -> GradNormIRError { .invalidInput(s) }
        guard positives >= 1 else { throw bad("--positives must be at least 1") }
        guard negatives >= 1 else { throw bad("--negatives must be at least 1") }
        guard dropout >= 0, dropout < 1 else { throw bad("--dropout must be in [0, 1)") }
        guard temperature > 0, temperature.isFinite else { throw bad("--temperature must be a positive number") }
        guard maxLength >= 2 else { throw bad("--max-length must be at least 2") }
        if let d = exclusionDepth, d < 0 { throw bad("--exclusion-depth must be non-negative") }
        if let d = candidateDepth, d < 1 { throw bad("--candidate-depth must be at least 1") }
    }
}

/// One record of a document: its positive and negatives, as corpus indices.
public struct RecordPlan: Sendable, Equatable {
    public let positive: Int
    public let negatives: [Int]
}

/// The corpus-side state of GradNormIR: token ids and normal embeddings of every document, the
/// exact index over them, and each document's neighbourhood — computed once, shared by all
/// documents' records.
public final class CorpusIndex {
    public let ids: [[Int]]
    public let index: VectorIndex
    /// N(i): the top neighbours of document i (itself excluded), as deep as the deeper of the two
    /// depths of the config.
    public let neighbours: [[Int]]
    public let config: ScoringConfig

    /// Tokenises and embeds `documents` (eval mode, the model's pooling, L2-normalised) and
    /// finds every document's neighbours. `progress` is called with the number of documents embedded.
    public convenience init(documents: [String], retriever: Retriever, config: ScoringConfig,
                            progress: ((Int) -> Void)? = nil) throws {
        try config.validate()
        let m = try retriever.validatedMaxLength(config.maxLength)
        let ids = documents.map { retriever.tokenizer.encode($0, maxLength: m) }
        var embeddings: [[Float]] = []
        embeddings.reserveCapacity(ids.count)
        let chunk = 64
        var start = 0
        while start < ids.count {
            let end = min(ids.count, start + chunk)
            embeddings += retriever.searchEmbeddings(ids: Array(ids[start..<end]))
            start = end
            progress?(start)
        }
        try self.init(ids: ids, embeddings: embeddings, dimension: retriever.config.hiddenSize, config: config)
    }

    /// The same from token ids and their (L2-normalised) search embeddings already computed, e.g.
    /// kept across the sessions of an evolving corpus. Only the neighbourhoods are computed here.
    public init(ids: [[Int]], embeddings: [[Float]], dimension: Int, config: ScoringConfig) throws {
        try config.validate()
        precondition(ids.count == embeddings.count, "CorpusIndex: one embedding per document")
        self.config = config
        self.ids = ids
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
        ids = other.ids
        index = other.index
        let depth = config.neighbourDepth(corpusSize: ids.count)
        if depth <= other.config.neighbourDepth(corpusSize: ids.count) {
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

    public var count: Int { ids.count }

    /// The document query's positives (METHOD.md step 2): d's last-layer token states with a
    /// seeded Bernoulli mask (no rescaling), pooled without normalisation — mean over all tokens
    /// (the authors' mean-pooled retrievers), or the first token's masked state when the encoder
    /// pools by CLS (so the query lives in the index's space) — searched in the index; d itself
    /// dropped; the first n_pos results.
    public func positives(of d: Int, encoder: Encoder) -> [Int] {
        let C = index.dimension
        // Saved for backward so that the records' forward passes can reuse d's activations.
        encoder.forward(PackedBatch([ids[d]]), saveForBackward: true)
        var rng = SplitMix64(seed: config.seed ^ (UInt64(d) &* 0x9E37_79B9_7F4A_7C15))
        let T = ids[d].count
        var query = [Float](repeating: 0, count: C)
        // The mask covers all T × C states whatever the pooling, so a token's mask does not
        // depend on the pooling mode.
        let pooled = encoder.config.pooling == .cls ? 1 : T
        encoder.withLastHiddenStates { h in
            var mask = [UInt8](repeating: 1, count: T * C)
            if config.dropout > 0 { Dropout.makeMask(&mask, count: T * C, p: config.dropout, rng: &rng) }
            for t in 0..<pooled {
                for k in 0..<C where mask[t * C + k] != 0 { query[k] += h[t * C + k] }
            }
        }
        for k in 0..<C { query[k] /= Float(pooled) }
        let hits = index.search([query], k: config.positives + 1)[0]
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

/// `sample` distinct indices of `0..<count` drawn with a seeded partial Fisher–Yates shuffle,
/// returned in ascending order (all of them when sample ≥ count). Which documents to score when
/// only some are (the paper's regime: a large index, few scored documents).
public func seededSample(count: Int, sample: Int, seed: UInt64) -> [Int] {
    guard sample < count else { return Array(0..<count) }
    var a = Array(0..<count)
    var rng = SplitMix64(seed: seed ^ 0x5A4D_504C_4553)
    for i in 0..<max(0, sample) {
        let j = i + Int(rng.next() % UInt64(count - i))
        a.swapAt(i, j)
    }
    return a[0..<max(0, sample)].sorted()
}
