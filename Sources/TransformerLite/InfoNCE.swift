import Foundation

/// The contrastive loss of one record (query, positive, negatives): the query embedding e₀ against
/// candidates e₁ (the positive) and e₂…e_m (negatives), with cosine similarity and temperature τ:
///
///   z_j = cos(e₀, e_j)/τ,   L = −log softmax(z)₁ = logsumexp(z) − z₁.
///
/// Computed in Float64 (m ≤ a few dozen rows, so the cost is negligible).
public enum InfoNCE {
    /// Returns L and writes ∂L/∂e into `dEmbeddings` (rows, C), overwriting it.
    ///
    /// Backward: with u_i = e_i/‖e_i‖ and p = softmax(z), ∂L/∂z_j = p_j − [j = 1], so
    ///   ∂L/∂u₀ = Σ_j (p_j − δ_j)/τ · u_j,   ∂L/∂u_j = (p_j − δ_j)/τ · u₀,
    /// and through the normalisation ∂L/∂e_i = (g_i − u_i (u_i·g_i)) / ‖e_i‖.
    @discardableResult
    public static func forwardBackward(embeddings e: UnsafePointer<Float>, rows S: Int, dim C: Int,
                                       temperature tau: Double,
                                       dEmbeddings: UnsafeMutablePointer<Float>?) -> Double {
        precondition(S >= 2, "InfoNCE needs a query and at least one candidate")
        precondition(tau > 0, "InfoNCE: temperature must be positive")
        // u_i = e_i / ‖e_i‖ in Double.
        let (u, norms) = normalizedRows(e, rows: S, dim: C)
        let m = S - 1
        var z = [Double](repeating: 0, count: m)
        for j in 0..<m {
            var d = 0.0
            for k in 0..<C { d += u[k] * u[(j + 1) * C + k] }
            z[j] = d / tau
        }
        let zmax = z.max()!
        let sumExp = z.reduce(0) { $0 + exp($1 - zmax) }
        let lse = zmax + log(sumExp)
        let loss = lse - z[0]
        guard let dE = dEmbeddings else { return loss }

        // ∂L/∂z_j, then ∂L/∂u.
        let dz = (0..<m).map { j in exp(z[j] - lse) - (j == 0 ? 1 : 0) }
        var g = [Double](repeating: 0, count: S * C)
        for j in 0..<m {
            let c = dz[j] / tau
            for k in 0..<C {
                g[k] += c * u[(j + 1) * C + k]
                g[(j + 1) * C + k] += c * u[k]
            }
        }
        backThroughNormalization(g, u: u, norms: norms, rows: S, dim: C, into: dE)
        return loss
    }
}

extension InfoNCE {
    /// In-batch contrastive loss (each query against every positive of the batch):
    /// rows 0..<B of `e` are queries q_i, rows B..<2B their positives p_i; every other positive in
    /// the batch is a negative. With cosine similarity and temperature τ,
    ///
    ///   z_ij = cos(q_i, p_j)/τ,   L = (1/B) Σ_i [logsumexp_j z_ij − z_ii].
    ///
    /// Returns L and writes ∂L/∂e (2B, C) into `dEmbeddings`, overwriting it. Backward: with
    /// P = softmax_j(z_i·), ∂L/∂z_ij = (P_ij − δ_ij)/B; ∂L/∂u_{q_i} = Σ_j ∂z_ij · u_{p_j}/τ,
    /// ∂L/∂u_{p_j} = Σ_i ∂z_ij · u_{q_i}/τ, then through the normalisation as in `forwardBackward`.
    /// Computed in Float64.
    @discardableResult
    public static func inBatch(embeddings e: UnsafePointer<Float>, pairs B: Int, dim C: Int,
                               temperature tau: Double, dEmbeddings: UnsafeMutablePointer<Float>?) -> Double {
        precondition(B >= 1, "InfoNCE.inBatch needs at least one pair")
        precondition(tau > 0, "InfoNCE: temperature must be positive")
        let S = 2 * B
        let (u, norms) = normalizedRows(e, rows: S, dim: C)
        // z (B, B): queries against positives.
        var z = [Double](repeating: 0, count: B * B)
        for i in 0..<B {
            for j in 0..<B {
                var d = 0.0
                for k in 0..<C { d += u[i * C + k] * u[(B + j) * C + k] }
                z[i * B + j] = d / tau
            }
        }
        var loss = 0.0
        var dz = [Double](repeating: 0, count: B * B)
        for i in 0..<B {
            let row = z[(i * B)..<((i + 1) * B)]
            let zmax = row.max()!
            let lse = zmax + log(row.reduce(0) { $0 + exp($1 - zmax) })
            loss += lse - z[i * B + i]
            for j in 0..<B { dz[i * B + j] = (exp(z[i * B + j] - lse) - (i == j ? 1 : 0)) / Double(B) }
        }
        loss /= Double(B)
        guard let dE = dEmbeddings else { return loss }
        var g = [Double](repeating: 0, count: S * C)
        for i in 0..<B {
            for j in 0..<B {
                let c = dz[i * B + j] / tau
                if c == 0 { continue }
                for k in 0..<C {
                    g[i * C + k] += c * u[(B + j) * C + k]
                    g[(B + j) * C + k] += c * u[i * C + k]
                }
            }
        }
        backThroughNormalization(g, u: u, norms: norms, rows: S, dim: C, into: dE)
        return loss
    }
}

extension InfoNCE {
    /// u_i = e_i / ‖e_i‖ (Float64) and the norms ‖e_i‖ (at least 1e-12).
    static func normalizedRows(_ e: UnsafePointer<Float>, rows S: Int, dim C: Int) -> (u: [Double], norms: [Double]) {
        var u = [Double](repeating: 0, count: S * C)
        var norms = [Double](repeating: 0, count: S)
        for i in 0..<S {
            var s = 0.0
            for k in 0..<C { let v = Double(e[i * C + k]); s += v * v }
            let n = max(s.squareRoot(), 1e-12)
            norms[i] = n
            for k in 0..<C { u[i * C + k] = Double(e[i * C + k]) / n }
        }
        return (u, norms)
    }

    /// ∂L/∂e_i = (g_i − u_i (u_i·g_i)) / ‖e_i‖ from g = ∂L/∂u, written (overwriting) into dE.
    static func backThroughNormalization(_ g: [Double], u: [Double], norms: [Double], rows S: Int, dim C: Int,
                                         into dE: UnsafeMutablePointer<Float>) {
        for i in 0..<S {
            var dot = 0.0
            for k in 0..<C { dot += u[i * C + k] * g[i * C + k] }
            for k in 0..<C { dE[i * C + k] = Float((g[i * C + k] - u[i * C + k] * dot) / norms[i]) }
        }
    }
}
