import Foundation
import TransformerLite

/// Detection metrics (METHOD.md, "Ground truth and metrics"): AUROC, DRR, top-K budgets,
/// Spearman correlation, quantiles and bootstrap confidence intervals, plus per-document recall
/// from retrieval runs. All in Float64. Functions return nil where the metric is undefined
/// (an empty class, zero variance, an empty set) rather than a made-up number.
///
/// Array-length agreement between parallel arguments (scores/labels, x/y, recall/counts) is the
/// caller's contract and checked with `precondition`.
public enum Metrics {
    // MARK: - Ranking metrics

    /// Area under the ROC curve: the probability that a random positive scores above a random
    /// negative, ties counting ½ (the Mann–Whitney U statistic / (n₊·n₋)), computed in
    /// O(n log n) from average ranks. nil when either class is empty or a score is NaN.
    public static func auroc(scores: [Double], positives: [Bool]) -> Double? {
        precondition(scores.count == positives.count, "auroc: \(scores.count) scores but \(positives.count) labels")
        let nPos = positives.reduce(0) { $0 + ($1 ? 1 : 0) }
        let nNeg = positives.count - nPos
        guard nPos > 0, nNeg > 0, !scores.contains(where: { $0.isNaN }) else { return nil }
        let r = averageRanks(scores)
        var rankSum = 0.0
        for i in 0..<scores.count where positives[i] { rankSum += r[i] }
        // U = R₊ − n₊(n₊+1)/2 counts the (positive, negative) pairs ordered correctly, ties ½.
        let u = rankSum - Double(nPos) * Double(nPos + 1) / 2
        return u / (Double(nPos) * Double(nNeg))
    }

    /// Spearman's rank correlation: Pearson's correlation of the average ranks (so ties are
    /// handled). nil for fewer than 2 pairs, a NaN, or a constant x or y.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        precondition(x.count == y.count, "spearman: \(x.count) x values but \(y.count) y values")
        guard x.count >= 2, !x.contains(where: { $0.isNaN }), !y.contains(where: { $0.isNaN }) else { return nil }
        let rx = averageRanks(x), ry = averageRanks(y)
        let n = Double(x.count)
        let mx = rx.reduce(0, +) / n, my = ry.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<x.count {
            let a = rx[i] - mx, b = ry[i] - my
            sxy += a * b; sxx += a * a; syy += b * b
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    /// 1-based ranks of xs, tied values sharing the average of their positions. No NaN allowed.
    public static func averageRanks(_ xs: [Double]) -> [Double] {
        let order = xs.indices.sorted { xs[$0] != xs[$1] ? xs[$0] < xs[$1] : $0 < $1 }
        var ranks = [Double](repeating: 0, count: xs.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && xs[order[j + 1]] == xs[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1          // positions i...j (0-based) → mean rank
            for t in i...j { ranks[order[t]] = avg }
            i = j + 1
        }
        return ranks
    }

    /// Indices of the k largest scores, largest first; equal scores by smaller index first; NaN
    /// scores rank below every number. k ≤ 0 gives `[]`; k > count gives every index.
    public static func topK(scores: [Double], k: Int) -> [Int] {
        guard k > 0 else { return [] }
        let order = scores.indices.sorted { i, j in
            let a = scores[i], b = scores[j]
            if a.isNaN != b.isNaN { return b.isNaN }
            if !a.isNaN && a != b { return a > b }
            return i < j
        }
        return Array(order.prefix(k))
    }

    // MARK: - Document retrieval rate

    /// DRR(S) = Σ_{d∈S} recall(d)·nq(d) / Σ_{d∈S} nq(d): the recall of the retriever over the
    /// relevant queries of the flagged documents S (lower = the detector found documents the
    /// retriever really fails on). `recall` and `relevantQueryCount` are indexed by document;
    /// documents with nq(d) = 0 add nothing (their recall value is ignored, it may be NaN).
    /// Duplicate indices in `flagged` count once. nil when Σ_{d∈S} nq(d) = 0.
    public static func drr(flagged: [Int], recall: [Double], relevantQueryCount: [Int]) -> Double? {
        precondition(recall.count == relevantQueryCount.count,
                     "drr: \(recall.count) recall values but \(relevantQueryCount.count) query counts")
        var num = 0.0, den = 0
        for d in Set(flagged).sorted() {
            precondition(d >= 0 && d < recall.count, "drr: flagged document \(d) out of range 0..<\(recall.count)")
            let nq = relevantQueryCount[d]
            guard nq > 0 else { continue }
            num += recall[d] * Double(nq)
            den += nq
        }
        return den > 0 ? num / Double(den) : nil
    }

    // MARK: - Paired tests

    /// Exact two-sided sign test: the probability, under "each differing pair is equally likely
    /// to go either way", of a split at least as uneven as `gained` : `lost`
    /// (2·P[X ≤ min] for X ~ Binomial(n, ½), capped at 1). 1 when n = 0. Log-space, so any n works.
    public static func signTest(gained: Int, lost: Int) -> Double {
        precondition(gained >= 0 && lost >= 0, "signTest: counts must be non-negative")
        let n = gained + lost
        guard n > 0 else { return 1 }
        let m = min(gained, lost)
        let logHalfN = Double(n) * log(0.5)
        var logC = 0.0  // log C(n, 0)
        var tail = 0.0
        for i in 0...m {
            if i > 0 { logC += log(Double(n - i + 1)) - log(Double(i)) }
            tail += exp(logC + logHalfN)
        }
        return min(1, 2 * tail)
    }

    // MARK: - Summary statistics

    /// Arithmetic mean; nil for an empty array.
    public static func mean(_ xs: [Double]) -> Double? {
        xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
    }

    /// The q-quantile by linear interpolation between order statistics (Hyndman & Fan type 7,
    /// the default of R and NumPy): h = (n − 1)·q, Q = x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌊h⌋+1₎ − x₍⌊h⌋₎),
    /// 0-based order statistics. nil for an empty array, a NaN value, or q outside [0, 1].
    public static func quantile(_ xs: [Double], _ q: Double) -> Double? {
        guard !xs.isEmpty, q >= 0, q <= 1, !xs.contains(where: { $0.isNaN }) else { return nil }
        return sortedQuantile(xs.sorted(), q)
    }

    /// Type-7 quantile of an already sorted, non-empty array.
    static func sortedQuantile(_ s: [Double], _ q: Double) -> Double {
        let h = Double(s.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, s.count - 1)
        let frac = h - Double(lo)
        return frac == 0 ? s[lo] : s[lo] + frac * (s[hi] - s[lo])
    }

    // MARK: - Bootstrap confidence intervals

    /// Percentile bootstrap: `resamples` times, draws n indices of `0..<n` with replacement
    /// (SplitMix64 seeded by `seed`; n draws per resample), computes `statistic` on them and keeps
    /// it unless nil or NaN; returns the type-7 quantiles (1 − level)/2 and (1 + level)/2 of what
    /// was kept, or nil when nothing was. Same seed ⇒ same interval.
    static func bootstrap(count n: Int, resamples: Int, level: Double, seed: UInt64,
                          statistic: ([Int]) -> Double?) -> (low: Double, high: Double)? {
        precondition(resamples >= 1, "bootstrap: resamples must be >= 1")
        precondition(level > 0 && level < 1, "bootstrap: level must be in (0, 1)")
        guard n > 0 else { return nil }
        var rng = SplitMix64(seed: seed)
        var stats: [Double] = []
        stats.reserveCapacity(resamples)
        var sample = [Int](repeating: 0, count: n)
        for _ in 0..<resamples {
            for i in 0..<n { sample[i] = rng.nextIndex(below: n) }
            if let s = statistic(sample), !s.isNaN { stats.append(s) }
        }
        return percentileInterval(stats, level: level)
    }

    /// Percentile-bootstrap confidence interval of the AUROC, resampling documents (score and
    /// label together) with replacement. Resamples that miss a class are dropped. nil when the
    /// AUROC itself is undefined (an empty class or a NaN score).
    public static func aurocCI(scores: [Double], positives: [Bool], resamples: Int = 1000,
                               level: Double = 0.95, seed: UInt64) -> (low: Double, high: Double)? {
        guard auroc(scores: scores, positives: positives) != nil else { return nil }
        var s = [Double](repeating: 0, count: scores.count)
        var p = [Bool](repeating: false, count: scores.count)
        return bootstrap(count: scores.count, resamples: resamples, level: level, seed: seed) { picks in
            for (i, j) in picks.enumerated() { s[i] = scores[j]; p[i] = positives[j] }
            return auroc(scores: s, positives: p)
        }
    }

    /// The (1 − level)/2 and (1 + level)/2 type-7 quantiles; nil when `stats` is empty.
    static func percentileInterval(_ stats: [Double], level: Double) -> (low: Double, high: Double)? {
        guard !stats.isEmpty else { return nil }
        let s = stats.sorted()
        return (sortedQuantile(s, (1 - level) / 2), sortedQuantile(s, (1 + level) / 2))
    }
}
