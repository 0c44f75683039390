import Foundation
import TransformerLite

// Embedding-distance OOD baselines (METHOD.md, "Baselines the paper compares against"): each is
// fitted on the embeddings of an in-distribution reference set and scores documents by how far
// their embeddings lie from it. Larger score = more out-of-distribution, as for GradNormIR.
//
// ```swift
// let reference = try model.embed(referenceTexts)          // [[Float]], L2-normalised, (n, 384)
// let detectors: [OODDetector] = [
//     try KNNDistance(reference: reference),
//     try Mahalanobis(reference: reference),
//     try IPQ(reference: reference, seed: 7),
// ]
// for det in detectors { print(det.name, try det.scores(corpusEmbeddings)) }
// ```

/// A document-level out-of-distribution detector over embeddings. Larger score = more OOD.
public protocol OODDetector {
    /// A short name for reports ("knn", "mahalanobis", "ipq").
    var name: String { get }
    /// One score per embedding, in input order. Throws `GradNormIRError.invalidInput` for an
    /// embedding of the wrong dimension or with a non-finite value. An empty input gives `[]`.
    func scores(_ embeddings: [[Float]]) throws -> [Double]
}

// MARK: - Shared input handling

/// Validated embeddings flattened to one row-major buffer (count, dimension).
struct EmbeddingRows {
    let data: [Float]
    let count: Int
    let dimension: Int

    /// - Parameters:
    ///   - role: "reference" or "scored", for messages.
    ///   - dimension: the required dimension, or nil to take the first row's (then rows must be
    ///     non-empty; a reference set must not be empty).
    init(_ rows: [[Float]], detector: String, role: String, dimension: Int?) throws {
        if dimension == nil && rows.isEmpty {
            throw GradNormIRError.invalidInput("\(detector): the \(role) set is empty")
        }
        let d = dimension ?? rows[0].count
        guard d >= 1 else {
            throw GradNormIRError.invalidInput("\(detector): \(role) embedding 0 is empty (dimension 0)")
        }
        var data = [Float]()
        data.reserveCapacity(rows.count * d)
        for (i, r) in rows.enumerated() {
            guard r.count == d else {
                throw GradNormIRError.invalidInput(
                    "\(detector): \(role) embedding \(i) has dimension \(r.count), expected \(d)")
            }
            if let j = r.firstIndex(where: { !$0.isFinite }) {
                throw GradNormIRError.invalidInput(
                    "\(detector): \(role) embedding \(i) has a non-finite value (\(r[j])) at index \(j)")
            }
            data += r
        }
        self.data = data
        self.count = rows.count
        self.dimension = d
    }
}

/// L2-normalises each row of x (n, d) in place; a zero row is an input error.
func normalizeRows(_ x: inout [Float], n: Int, d: Int, detector: String, role: String) throws {
    try x.withUnsafeMutableBufferPointer { rows in
        for i in 0..<n {
            guard l2Normalize(UnsafeMutableBufferPointer(rebasing: rows[(i * d)..<((i + 1) * d)])) > 0 else {
                throw GradNormIRError.invalidInput("\(detector): \(role) embedding \(i) is the zero vector (no direction)")
            }
        }
    }
}
