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

// MARK: - kNN distance

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

// MARK: - Mahalanobis distance

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
                + "use more, distinct reference documents or a larger lambda")
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

// MARK: - IPQ-style product quantisation

/// IPQ-style baseline (the paper's): product quantisation of the reference embeddings. Each
/// embedding is split into `groups` consecutive sub-vectors of dimension d / groups, each
/// sub-vector is L2-normalised (a zero sub-vector stays zero), and per group k-means finds
/// `centroids` centroids over the reference. score(x) = mean over groups of the Euclidean distance
/// from x's normalised sub-vector to its nearest centroid of that group.
///
/// k-means, per group, in Float64: k-means++ initialisation (first centroid uniform, then each
/// next one drawn with probability ∝ squared distance to the nearest chosen centroid) with a
/// SplitMix64 stream per group, drawn from `SplitMix64(seed)`; then Lloyd iterations (assign each
/// point to its nearest centroid, ties to the lower index; move each centroid to its points' mean;
/// a centroid left without points stays where it is) until no centroid moves more than
/// `tolerance` (Euclidean) or `maxIterations` iterations. Centroids are not renormalised. If the
/// reference has fewer distinct sub-vectors than `centroids`, k-means++ stops when every point is
/// a centroid, so a group may have fewer centroids. Same input and seed ⇒ bit-identical result.
public struct IPQ: OODDetector, Sendable {
    public let name = "ipq"
    public let dimension: Int
    public let referenceCount: Int
    public let groups: Int
    /// Sub-vector dimension, `dimension / groups`.
    public let subDimension: Int
    /// Per group: its centroids, each of length `subDimension`.
    public let centroids: [[[Double]]]
    /// Per group: the Lloyd iterations run (≤ maxIterations).
    public let iterations: [Int]

    /// - Parameters:
    ///   - reference: in-distribution embeddings, all of one dimension (divisible by `groups`), finite.
    ///   - groups: sub-vector groups (default 8, as the paper).
    ///   - centroids: k-means centroids per group (default 16, as the paper).
    ///   - maxIterations: Lloyd iteration cap (default 50).
    ///   - tolerance: stop when the largest centroid move is ≤ this (default 1e-6; sub-vectors are unit).
    ///   - seed: seeds k-means++.
    public init(reference: [[Float]], groups: Int = 8, centroids: Int = 16,
                maxIterations: Int = 50, tolerance: Double = 1e-6, seed: UInt64 = 0) throws {
        guard groups >= 1 else { throw GradNormIRError.invalidInput("ipq: groups must be >= 1 (got \(groups))") }
        guard centroids >= 1 else { throw GradNormIRError.invalidInput("ipq: centroids must be >= 1 (got \(centroids))") }
        guard maxIterations >= 1 else {
            throw GradNormIRError.invalidInput("ipq: maxIterations must be >= 1 (got \(maxIterations))")
        }
        guard tolerance.isFinite, tolerance >= 0 else {
            throw GradNormIRError.invalidInput("ipq: tolerance must be finite and >= 0 (got \(tolerance))")
        }
        let m = try EmbeddingRows(reference, detector: "ipq", role: "reference", dimension: nil)
        guard m.dimension % groups == 0 else {
            throw GradNormIRError.invalidInput(
                "ipq: embedding dimension \(m.dimension) is not divisible by \(groups) groups")
        }
        let n = m.count, s = m.dimension / groups
        var master = SplitMix64(seed: seed)
        let groupSeeds = (0..<groups).map { _ in master.next() }
        // Groups are independent: run them on the engine's workers (BLAS.engineThreads). Each
        // group's result depends only on its data and seed, so it is the same for any split.
        var results = [([[Double]], Int)](repeating: ([], 0), count: groups)
        let workers = max(1, min(BLAS.engineThreads, groups))
        let data = m.data, dim = m.dimension
        results.withUnsafeMutableBufferPointer { buffer in
            let out = buffer           // disjoint writes, one index per group
            let fitGroup = { (g: Int) in
                let x = Self.subVectors(data, count: n, dimension: dim, group: g, subDimension: s)
                var rng = SplitMix64(seed: groupSeeds[g])
                out[g] = Self.kMeans(x, n: n, s: s, k: centroids, maxIterations: maxIterations,
                                     tolerance: tolerance, rng: &rng)
            }
            if workers == 1 {
                for g in 0..<groups { fitGroup(g) }
            } else {
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for g in stride(from: w, to: groups, by: workers) { fitGroup(g) }
                }
            }
        }
        let books = results.map { $0.0 }
        let iters = results.map { $0.1 }
        self.dimension = m.dimension
        self.referenceCount = n
        self.groups = groups
        self.subDimension = s
        self.centroids = books
        self.iterations = iters
    }

    public func scores(_ embeddings: [[Float]]) throws -> [Double] {
        let q = try EmbeddingRows(embeddings, detector: name, role: "scored", dimension: dimension)
        let s = subDimension
        var out = [Double](repeating: 0, count: q.count)
        for g in 0..<groups {
            let x = Self.subVectors(q.data, count: q.count, dimension: dimension, group: g, subDimension: s)
            let flat = centroids[g].flatMap { $0 }
            let kg = centroids[g].count
            x.withUnsafeBufferPointer { xp in
                flat.withUnsafeBufferPointer { cp in
                    for i in 0..<q.count {
                        let (_, d2) = Self.nearest(xp.baseAddress! + i * s, cp.baseAddress!, k: kg, s: s)
                        out[i] += d2.squareRoot()
                    }
                }
            }
        }
        for i in 0..<q.count { out[i] /= Double(groups) }
        return out
    }

    /// Group g's sub-vectors (count, s) in Float64, each L2-normalised (zero stays zero).
    static func subVectors(_ data: [Float], count: Int, dimension: Int, group g: Int, subDimension s: Int) -> [Double] {
        var x = [Double](repeating: 0, count: count * s)
        for i in 0..<count {
            var nrm = 0.0
            for j in 0..<s {
                let v = Double(data[i * dimension + g * s + j])
                x[i * s + j] = v
                nrm += v * v
            }
            if nrm > 0 {
                let inv = 1 / nrm.squareRoot()
                for j in 0..<s { x[i * s + j] *= inv }
            }
        }
        return x
    }

    /// ‖a − b‖² over s elements.
    @inline(__always)
    static func squaredDistance(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, s: Int) -> Double {
        // Four independent accumulators (fixed order, so still deterministic): the single-chain
        // sum was bound by the add latency.
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
        var j = 0
        while j + 4 <= s {
            let t0 = a[j] - b[j], t1 = a[j + 1] - b[j + 1], t2 = a[j + 2] - b[j + 2], t3 = a[j + 3] - b[j + 3]
            a0 += t0 * t0; a1 += t1 * t1; a2 += t2 * t2; a3 += t3 * t3
            j += 4
        }
        while j < s { let t = a[j] - b[j]; a0 += t * t; j += 1 }
        return (a0 + a1) + (a2 + a3)
    }

    /// The nearest of k centroids (k, s) to x (ties: lower index) and its squared distance.
    @inline(__always)
    static func nearest(_ x: UnsafePointer<Double>, _ c: UnsafePointer<Double>, k: Int, s: Int) -> (Int, Double) {
        var bi = 0
        var bd = Double.infinity
        for c0 in 0..<k {
            let d2 = squaredDistance(x, c + c0 * s, s: s)
            if d2 < bd { bd = d2; bi = c0 }
        }
        return (bi, bd)
    }

    /// k-means++ then Lloyd over x (n, s). Returns the centroids and the Lloyd iterations run.
    static func kMeans(_ x: [Double], n: Int, s: Int, k: Int, maxIterations: Int, tolerance: Double,
                       rng: inout SplitMix64) -> ([[Double]], Int) {
        var c: [Double] = []          // (kc, s)
        var kc = 0
        var iterationsRun = 0
        x.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            // k-means++: D²[i] = squared distance from point i to its nearest chosen centroid.
            let first = rng.nextIndex(below: n)
            c.append(contentsOf: xb[(first * s)..<((first + 1) * s)])
            kc = 1
            var dist2 = (0..<n).map { squaredDistance(xp + $0 * s, xp + first * s, s: s) }
            while kc < k {
                let total = dist2.reduce(0, +)
                if !(total > 0) { break }   // every point coincides with a centroid
                let r = rng.nextUnitDouble() * total
                var pick = -1, cum = 0.0
                for i in 0..<n where dist2[i] > 0 {
                    cum += dist2[i]
                    pick = i
                    if cum > r { break }
                }
                c.append(contentsOf: xb[(pick * s)..<((pick + 1) * s)])
                kc += 1
                for i in 0..<n {
                    let d2 = squaredDistance(xp + i * s, xp + pick * s, s: s)
                    if d2 < dist2[i] { dist2[i] = d2 }
                }
            }
            // Lloyd iterations.
            var assign = [Int](repeating: 0, count: n)
            var sums = [Double](repeating: 0, count: kc * s)
            var counts = [Int](repeating: 0, count: kc)
            for it in 1...maxIterations {
                iterationsRun = it
                c.withUnsafeBufferPointer { cb in
                    for i in 0..<n { assign[i] = nearest(xp + i * s, cb.baseAddress!, k: kc, s: s).0 }
                }
                for t in 0..<(kc * s) { sums[t] = 0 }
                for t in 0..<kc { counts[t] = 0 }
                for i in 0..<n {
                    let a = assign[i]
                    counts[a] += 1
                    for j in 0..<s { sums[a * s + j] += xp[i * s + j] }
                }
                var maxShift2 = 0.0
                for t in 0..<kc where counts[t] > 0 {
                    var shift2 = 0.0
                    let inv = 1 / Double(counts[t])
                    for j in 0..<s {
                        let v = sums[t * s + j] * inv
                        let dv = v - c[t * s + j]
                        shift2 += dv * dv
                        c[t * s + j] = v
                    }
                    maxShift2 = max(maxShift2, shift2)
                }
                if maxShift2 <= tolerance * tolerance { break }
            }
        }
        let books = (0..<kc).map { Array(c[($0 * s)..<(($0 + 1) * s)]) }
        return (books, iterationsRun)
    }
}

// MARK: - Shared input handling

/// Validated embeddings flattened to one row-major buffer (count, dimension).
private struct EmbeddingRows {
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
private func normalizeRows(_ x: inout [Float], n: Int, d: Int, detector: String, role: String) throws {
    for i in 0..<n {
        var s = 0.0
        for j in 0..<d { s += Double(x[i * d + j]) * Double(x[i * d + j]) }
        guard s > 0 else {
            throw GradNormIRError.invalidInput("\(detector): \(role) embedding \(i) is the zero vector (no direction)")
        }
        let inv = 1 / s.squareRoot()
        for j in 0..<d { x[i * d + j] = Float(Double(x[i * d + j]) * inv) }
    }
}
