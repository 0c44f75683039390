import Foundation

/// Naive Float64 references of the detection metrics and of the embedding-distance baselines
/// (STYLE.md §5): plain loops over all pairs, textbook formulas, an explicit matrix inverse. They
/// are the specification `Metrics`, `KNNDistance` and `Mahalanobis` are tested against.
public enum RefMetrics {
    /// AUROC over all (positive, negative) pairs: 1 if the positive scores higher, ½ if tied.
    public static func aurocAllPairs(_ scores: [Double], _ positives: [Bool]) -> Double? {
        var wins = 0.0, pairs = 0.0
        for i in scores.indices where positives[i] {
            for j in scores.indices where !positives[j] {
                pairs += 1
                if scores[i] > scores[j] { wins += 1 } else if scores[i] == scores[j] { wins += 0.5 }
            }
        }
        return pairs > 0 ? wins / pairs : nil
    }

    /// Average 1-based ranks by counting: rank(x_i) = #{x_j < x_i} + (#{x_j == x_i} + 1)/2.
    public static func ranksByCounting(_ xs: [Double]) -> [Double] {
        xs.map { v in
            let less = xs.filter { $0 < v }.count
            let equal = xs.filter { $0 == v }.count
            return Double(less) + Double(equal + 1) / 2
        }
    }

    /// Spearman's ρ by the textbook formula 1 − 6·Σd²/(n(n² − 1)); valid only without ties.
    public static func spearmanNoTies(_ x: [Double], _ y: [Double]) -> Double {
        let rx = ranksByCounting(x), ry = ranksByCounting(y)
        let n = Double(x.count)
        var d2 = 0.0
        for i in x.indices { d2 += (rx[i] - ry[i]) * (rx[i] - ry[i]) }
        return 1 - 6 * d2 / (n * (n * n - 1))
    }

    /// Pearson's correlation, two-pass.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            sxy += (x[i] - mx) * (y[i] - my)
            sxx += (x[i] - mx) * (x[i] - mx)
            syy += (y[i] - my) * (y[i] - my)
        }
        return sxy / (sxx * syy).squareRoot()
    }

    /// kNN distance: 1 − mean of the k largest cosine similarities, all by explicit loops.
    public static func knnScores(reference: [[Double]], queries: [[Double]], k: Int) -> [Double] {
        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for i in a.indices { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i] }
            return ab / (aa.squareRoot() * bb.squareRoot())
        }
        return queries.map { q in
            let sims = reference.map { cosine(q, $0) }.sorted(by: >)
            let kk = min(k, sims.count)
            return 1 - sims.prefix(kk).reduce(0, +) / Double(kk)
        }
    }

    /// Inverse of the n×n row-major matrix a by Gauss–Jordan elimination with partial
    /// pivoting; nil if a pivot is (numerically) zero.
    public static func gaussJordanInverse(_ a: [Double], n: Int) -> [Double]? {
        var m = a
        var inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for col in 0..<n {
            var p = col
            for r in (col + 1)..<max(col + 1, n) where abs(m[r * n + col]) > abs(m[p * n + col]) { p = r }
            if abs(m[p * n + col]) < 1e-300 { return nil }
            if p != col {
                for j in 0..<n {
                    m.swapAt(p * n + j, col * n + j)
                    inv.swapAt(p * n + j, col * n + j)
                }
            }
            let piv = m[col * n + col]
            for j in 0..<n { m[col * n + j] /= piv; inv[col * n + j] /= piv }
            for r in 0..<n where r != col {
                let f = m[r * n + col]
                if f == 0 { continue }
                for j in 0..<n {
                    m[r * n + j] -= f * m[col * n + j]
                    inv[r * n + j] -= f * inv[col * n + j]
                }
            }
        }
        return inv
    }

    /// Mahalanobis scores (x − μ)ᵀ (Σ + λ·tr(Σ)/d·I)⁻¹ (x − μ), Σ the covariance divided by n,
    /// with the inverse by Gauss–Jordan.
    public static func mahalanobisScores(reference: [[Double]], queries: [[Double]], lambda: Double) -> [Double]? {
        let n = reference.count, d = reference[0].count
        var mu = [Double](repeating: 0, count: d)
        for x in reference { for j in 0..<d { mu[j] += x[j] / Double(n) } }
        var cov = [Double](repeating: 0, count: d * d)
        for x in reference {
            for a in 0..<d { for b in 0..<d { cov[a * d + b] += (x[a] - mu[a]) * (x[b] - mu[b]) / Double(n) } }
        }
        var trace = 0.0
        for a in 0..<d { trace += cov[a * d + a] }
        for a in 0..<d { cov[a * d + a] += lambda * trace / Double(d) }
        guard let inv = gaussJordanInverse(cov, n: d) else { return nil }
        return queries.map { x in
            var s = 0.0
            for a in 0..<d { for b in 0..<d { s += (x[a] - mu[a]) * inv[a * d + b] * (x[b] - mu[b]) } }
            return s
        }
    }
}
