import Foundation
import TransformerLite

/// Mahalanobis distance: score(x) = (x − μ)ᵀ Σ_λ⁻¹ (x − μ), μ and Σ the mean and covariance of the
/// reference embeddings, all in Float64.
///
/// Σ is the maximum-likelihood covariance (divided by n, as in Lee et al. 2018's Mahalanobis OOD
/// detector). Ridge regularisation: Σ_λ = Σ + λ·(trace(Σ)/d)·I, i.e. λ times the mean variance per
/// dimension added to the diagonal (default λ = 1e-3). It is needed because references are often
/// smaller than the dimension (384): with n ≤ d documents Σ has rank ≤ n − 1 and is singular.
/// Scaling by trace(Σ)/d makes λ independent of the embeddings' scale.
///
/// Σ_λ is factored once at fit (Cholesky, LAPACK dpotrf); `scores` solves Σ_λ·Z = (X − μ)ᵀ for
/// blocks of up to 2,048 documents in one multi-right-hand-side call each (dpotrs) and takes
/// score_i = Σ_j (x_i − μ)_j · Z_ji.
public struct Mahalanobis: OODDetector, Sendable {
    public let name = "mahalanobis"
    public let dimension: Int
    public let referenceCount: Int
    /// The relative ridge λ passed at fit.
    public let lambda: Double
    /// The absolute value added to the covariance diagonal: λ·trace(Σ)/d.
    public let ridge: Double
    /// μ (d).
    public let mean: [Double]
    /// Cholesky factor L of Σ_λ = L·Lᵀ (d, d) row-major, lower triangle (upper triangle unused).
    let factor: [Double]

    /// Documents per dpotrs call in `scores`.
    static let blockColumns = 2_048

    /// - Parameters:
    ///   - reference: in-distribution embeddings, all of one dimension, finite.
    ///   - lambda: relative ridge λ ≥ 0 (default 1e-3); see the type's documentation.
    /// - Throws: `GradNormIRError.invalidInput` for bad input, or when Σ_λ is not positive definite
    ///   (e.g. all reference embeddings identical, or λ = 0 with fewer documents than dimensions).
    public init(reference: [[Float]], lambda: Double = 1e-3) throws {
        guard lambda.isFinite, lambda >= 0 else {
            throw GradNormIRError.invalidInput("mahalanobis: ridge lambda must be finite and >= 0 (got \(lambda))")
        }
        let m = try EmbeddingRows(reference, detector: "mahalanobis", role: "reference", dimension: nil)
        let n = m.count, d = m.dimension
        // μ (d)
        var mu = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mu[j] += Double(m.data[i * d + j]) } }
        for j in 0..<d { mu[j] /= Double(n) }
        // Σ (d, d), lower triangle: Σ_ab = (1/n) Σ_i (x_ia − μ_a)(x_ib − μ_b), b ≤ a. The inner
        // loop is an axpy over b, which the compiler vectorises.
        var cov = [Double](repeating: 0, count: d * d)
        var centred = [Double](repeating: 0, count: d)
        cov.withUnsafeMutableBufferPointer { cp in
            centred.withUnsafeMutableBufferPointer { xc in
                for i in 0..<n {
                    for j in 0..<d { xc[j] = Double(m.data[i * d + j]) - mu[j] }
                    for a in 0..<d {
                        let xa = xc[a]
                        let row = cp.baseAddress! + a * d
                        for b in 0...a { row[b] += xa * xc[b] }
                    }
                }
            }
        }
        var trace = 0.0
        for a in 0..<d {
            for b in 0...a { cov[a * d + b] /= Double(n) }
            trace += cov[a * d + a]
        }
        let ridge = lambda * trace / Double(d)
        for a in 0..<d { cov[a * d + a] += ridge }
        let info = cov.withUnsafeMutableBufferPointer { BLAS.choleskyFactor(a: $0.baseAddress!, n: d) }
        guard info == 0 else {
            let why = trace == 0
                ? "all \(n) reference embeddings are identical (zero covariance)"
                : "leading minor \(info) is not positive (reference of \(n) documents in dimension \(d), lambda \(lambda))"
            throw GradNormIRError.invalidInput(
                "mahalanobis: the regularised reference covariance is not positive definite: \(why); "
                + "the reference needs more documents, distinct from one another "
                + "(a library caller may instead raise the ridge parameter lambda of Mahalanobis(reference:lambda:))")
        }
        self.dimension = d
        self.referenceCount = n
        self.lambda = lambda
        self.ridge = ridge
        self.mean = mu
        self.factor = cov
    }

    public func scores(_ embeddings: [[Float]]) throws -> [Double] {
        let q = try EmbeddingRows(embeddings, detector: name, role: "scored", dimension: dimension)
        let d = dimension
        var out = [Double](repeating: 0, count: q.count)
        var start = 0
        while start < q.count {
            let cols = min(Self.blockColumns, q.count - start)
            // B (d, cols): column i = x_(start+i) − μ. Solve Σ_λ · Z = B in place (Z (d, cols)).
            var b = [Double](repeating: 0, count: d * cols)
            for i in 0..<cols {
                let base = (start + i) * d
                for j in 0..<d { b[j * cols + i] = Double(q.data[base + j]) - mean[j] }
            }
            var z = b
            let info = factor.withUnsafeBufferPointer { fp in
                z.withUnsafeMutableBufferPointer { BLAS.choleskySolve(factor: fp.baseAddress!, n: d, b: $0.baseAddress!, nrhs: cols) }
            }
            precondition(info == 0, "mahalanobis: dpotrs failed with info \(info)")  // only bad arguments
            for j in 0..<d {
                for i in 0..<cols { out[start + i] += b[j * cols + i] * z[j * cols + i] }
            }
            start += cols
        }
        return out
    }
}
