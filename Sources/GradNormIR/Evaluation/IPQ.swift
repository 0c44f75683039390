import Foundation
import TransformerLite

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
        x.withUnsafeMutableBufferPointer { rows in
            for i in 0..<count {
                for j in 0..<s { rows[i * s + j] = Double(data[i * dimension + g * s + j]) }
                l2Normalize(UnsafeMutableBufferPointer(rebasing: rows[(i * s)..<((i + 1) * s)]))
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
