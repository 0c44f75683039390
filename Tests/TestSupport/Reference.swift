import Foundation
import TransformerLite

/// Naive Float64 references of every layer and of the whole encoder (STYLE.md §5): plain loops,
/// no BLAS, written for readability. They are the specification the Float32 kernels are tested
/// against, and the function whose finite differences check every backward pass.
public enum Ref {
    /// y (n, out) = x (n, in) · Wᵀ + b, W stored (out, in).
    public static func linear(_ x: [Double], _ w: [Double], _ b: [Double]?, n: Int, inDim: Int, outDim: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * outDim)
        for r in 0..<n {
            for o in 0..<outDim {
                var s = b?[o] ?? 0
                for i in 0..<inDim { s += x[r * inDim + i] * w[o * inDim + i] }
                y[r * outDim + o] = s
            }
        }
        return y
    }

    public static func layerNorm(_ x: [Double], _ g: [Double], _ b: [Double], n: Int, c: Int, eps: Double) -> [Double] {
        var y = x
        for r in 0..<n {
            let row = Array(x[(r * c)..<((r + 1) * c)])
            let m = row.reduce(0, +) / Double(c)
            let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c)
            let rs = 1 / (v + eps).squareRoot()
            for i in 0..<c { y[r * c + i] = (row[i] - m) * rs * g[i] + b[i] }
        }
        return y
    }

    public static func gelu(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
    }

    /// Softmax attention of one sequence per call, over qkv (T, 3C) → ctx (T, C).
    public static func attention(_ qkv: [Double], t T: Int, c C: Int, heads H: Int) -> [Double] {
        let d = C / H
        let scale = 1 / Double(d).squareRoot()
        var ctx = [Double](repeating: 0, count: T * C)
        for h in 0..<H {
            for i in 0..<T {
                var s = [Double](repeating: 0, count: T)
                for j in 0..<T {
                    var dot = 0.0
                    for k in 0..<d { dot += qkv[i * 3 * C + h * d + k] * qkv[j * 3 * C + C + h * d + k] }
                    s[j] = dot * scale
                }
                let mx = s.max()!
                let e = s.map { exp($0 - mx) }
                let z = e.reduce(0, +)
                for k in 0..<d {
                    var acc = 0.0
                    for j in 0..<T { acc += e[j] / z * qkv[j * 3 * C + 2 * C + h * d + k] }
                    ctx[i * C + h * d + k] = acc
                }
            }
        }
        return ctx
    }

    public static func l2normalize(_ x: [Double]) -> [Double] {
        let n = max(x.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-12)
        return x.map { $0 / n }
    }

    /// The whole encoder on one sequence: embeddings → L layers → pooling → optional L2 norm.
    /// `hiddenHook`, when given, may change the last layer's token states (T, C) before pooling.
    /// `dropout`, when given, holds a (T, C) multiplier per hidden-dropout site (0 or 1/(1−p); the
    /// embeddings' output, then each layer's attention output and feed-forward output, as
    /// `HiddenDropout` numbers them).
    public static func encode(_ ids: [Int], params p: [Double], layout: ParameterLayout,
                              dropout: [[Double]]? = nil,
                              hiddenHook: ((inout [Double]) -> Void)? = nil) -> [Double] {
        let c = layout.config
        let C = c.hiddenSize, I = c.intermediateSize, T = ids.count
        let eps = Double(c.layerNormEps)
        func slice(_ o: Int, _ k: Int) -> [Double] { Array(p[o..<(o + k)]) }
        let e = layout.embeddings
        var x = [Double](repeating: 0, count: T * C)
        for t in 0..<T {
            for i in 0..<C {
                x[t * C + i] = p[e.word + ids[t] * C + i] + p[e.position + t * C + i] + p[e.tokenType + i]
            }
        }
        func drop(_ v: inout [Double], _ site: Int) {
            if let d = dropout { for i in 0..<(T * C) { v[i] *= d[site][i] } }
        }
        x = layerNorm(x, slice(e.lnWeight, C), slice(e.lnBias, C), n: T, c: C, eps: eps)
        drop(&x, 0)
        for (li, l) in layout.layers.enumerated() {
            let qkv = linear(x, slice(l.qkvWeight, 3 * C * C), slice(l.qkvBias, 3 * C), n: T, inDim: C, outDim: 3 * C)
            let ctx = attention(qkv, t: T, c: C, heads: c.numHeads)
            var r1 = linear(ctx, slice(l.attnOutWeight, C * C), slice(l.attnOutBias, C), n: T, inDim: C, outDim: C)
            drop(&r1, 1 + 2 * li)
            for i in 0..<(T * C) { r1[i] += x[i] }
            let h1 = layerNorm(r1, slice(l.ln1Weight, C), slice(l.ln1Bias, C), n: T, c: C, eps: eps)
            let a = gelu(linear(h1, slice(l.ffnInWeight, I * C), slice(l.ffnInBias, I), n: T, inDim: C, outDim: I))
            var r2 = linear(a, slice(l.ffnOutWeight, C * I), slice(l.ffnOutBias, C), n: T, inDim: I, outDim: C)
            drop(&r2, 2 + 2 * li)
            for i in 0..<(T * C) { r2[i] += h1[i] }
            x = layerNorm(r2, slice(l.ln2Weight, C), slice(l.ln2Bias, C), n: T, c: C, eps: eps)
        }
        hiddenHook?(&x)
        var pooled = [Double](repeating: 0, count: C)
        switch c.pooling {
        case .cls:
            pooled = Array(x[0..<C])
        case .mean:
            for t in 0..<T { for i in 0..<C { pooled[i] += x[t * C + i] / Double(T) } }
        }
        return c.normalize ? l2normalize(pooled) : pooled
    }

    /// Central finite difference of a scalar function of a vector, at every index in `indices`.
    public static func finiteDifference(_ f: ([Double]) -> Double, at x: [Double], indices: [Int], h: Double = 1e-5) -> [Double] {
        var xp = x
        return indices.map { i in
            let v = xp[i]
            xp[i] = v + h; let fp = f(xp)
            xp[i] = v - h; let fm = f(xp)
            xp[i] = v
            return (fp - fm) / (2 * h)
        }
    }

    /// ‖a − b‖ / max(‖a‖, ‖b‖, tiny): the normalised error every gradient check reports.
    public static func normalizedError(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var d = 0.0, na = 0.0, nb = 0.0
        for i in 0..<a.count { d += (a[i] - b[i]) * (a[i] - b[i]); na += a[i] * a[i]; nb += b[i] * b[i] }
        return d.squareRoot() / max(na.squareRoot(), nb.squareRoot(), 1e-300)
    }
}

/// Seeded test data on top of the engine's own generator (SplitMix64), so every test is reproducible.
public struct TestRNG {
    var rng: SplitMix64
    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { rng.next() }
    /// Uniform in [-scale, scale).
    public mutating func uniform(_ scale: Double = 1) -> Double {
        (Double(next() >> 11) / Double(1 << 53) * 2 - 1) * scale
    }
    public mutating func array(_ n: Int, scale: Double = 1) -> [Double] { (0..<n).map { _ in uniform(scale) } }
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

public extension Array where Element == Double {
    var floats: [Float] { map(Float.init) }
}
public extension Array where Element == Float {
    var doubles: [Double] { map(Double.init) }
}
