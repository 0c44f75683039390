import Foundation
import TransformerLite

/// kNN distance: score(x) = 1 − (mean cosine similarity of x to its k nearest reference
/// embeddings). 0 for a document whose k nearest references are all identical to it; at most 2.
///
/// Reference and scored embeddings are L2-normalised here (so the similarity is the cosine even
/// if the caller's embeddings are not normalised); a zero vector is rejected. The similarities and
/// the top-k selection are the `VectorIndex`'s exact inner-product search over the normalised
/// reference (Float32 gemm blocks); the mean of the k similarities is then taken in Float64. A
/// document that is itself in the reference finds itself at similarity 1.
public struct KNNDistance: OODDetector, Sendable {
    public let name = "knn"
    /// The number of neighbours averaged: the requested k, capped at the reference size.
    public let k: Int
    public let dimension: Int
    public let referenceCount: Int
    /// The reference embeddings, each L2-normalised.
    let index: VectorIndex

    /// - Parameters:
    ///   - reference: in-distribution embeddings, all of one dimension, finite, non-zero.
    ///   - k: neighbours to average (≥ 1; default 10); capped at `reference.count`.
    public init(reference: [[Float]], k: Int = 10) throws {
        guard k >= 1 else { throw GradNormIRError.invalidInput("knn: k must be >= 1 (got \(k))") }
        let m = try EmbeddingRows(reference, detector: "knn", role: "reference", dimension: nil)
        var data = m.data
        try normalizeRows(&data, n: m.count, d: m.dimension, detector: "knn", role: "reference")
        let d = m.dimension
        self.index = VectorIndex(dimension: d, vectors: (0..<m.count).map { Array(data[($0 * d)..<(($0 + 1) * d)]) })
        self.dimension = d
        self.referenceCount = m.count
        self.k = min(k, m.count)
    }

    public func scores(_ embeddings: [[Float]]) throws -> [Double] {
        let q = try EmbeddingRows(embeddings, detector: name, role: "scored", dimension: dimension)
        var queries = q.data
        try normalizeRows(&queries, n: q.count, d: dimension, detector: name, role: "scored")
        let hits = queries.withUnsafeBufferPointer {
            index.search(packed: $0, queryCount: q.count, k: k, excludingSets: nil, excludingSelf: nil)
        }
        // Hits come best first, as the sum over the k largest always did.
        return hits.map { h in 1 - h.reduce(0.0) { $0 + Double($1.score) } / Double(k) }
    }
}
