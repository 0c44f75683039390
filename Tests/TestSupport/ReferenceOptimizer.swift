import Foundation

/// Float64 references of the update-step pieces (STYLE.md §5): AdamW exactly as PyTorch's
/// `_single_tensor_adamw` writes it, the linear warm-up/decay schedule, global-norm clipping and
/// the in-batch InfoNCE loss. Plain loops, written for readability.
public enum RefOptim {
    /// The state of one AdamW run: parameters, moments and the step count.
    public struct AdamWState {
        public var params: [Double]
        public var m: [Double]
        public var v: [Double]
        public var step = 0
        public init(params: [Double]) {
            self.params = params
            m = [Double](repeating: 0, count: params.count)
            v = m
        }
    }

    /// One AdamW step t = step + 1 (torch.optim.AdamW, amsgrad off, maximize off):
    ///   θ ← θ(1 − lr·λ);  m ← m + (1 − β₁)(g − m)  (`lerp_`);  v ← β₂v + (1 − β₂)g²;
    ///   θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
    public static func adamWStep(_ s: inout AdamWState, grads g: [Double], lr: Double, beta1: Double,
                                 beta2: Double, eps: Double, weightDecay: Double) {
        precondition(g.count == s.params.count)
        s.step += 1
        let t = Double(s.step)
        let bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t)
        for i in 0..<g.count {
            s.params[i] *= 1 - lr * weightDecay
            s.m[i] += (1 - beta1) * (g[i] - s.m[i])
            s.v[i] = beta2 * s.v[i] + (1 - beta2) * g[i] * g[i]
            let denom = s.v[i].squareRoot() / bc2.squareRoot() + eps
            s.params[i] -= lr / bc1 * s.m[i] / denom
        }
    }

    /// Hugging Face `get_linear_schedule_with_warmup` as the rate of the t-th optimizer step
    /// (1-based): λ(s) with s = t − 1 scheduler steps taken before it,
    /// λ(s) = s/w for s < w, else max(0, (T − s)/(T − w)).
    public static func linearWarmupRate(step t: Int, peak: Double, warmup w: Int, total T: Int) -> Double {
        let s = t - 1
        if s < w { return peak * Double(s) / Double(max(1, w)) }
        return peak * max(0, Double(T - s) / Double(max(1, T - w)))
    }

    /// `torch.nn.utils.clip_grad_norm_`: returns the norm before clipping and the clipped gradient.
    public static func clip(_ g: [Double], maxNorm: Double) -> (norm: Double, clipped: [Double]) {
        let n = g.map { $0 * $0 }.reduce(0, +).squareRoot()
        let coef = min(1, maxNorm / (n + 1e-6))
        return (n, g.map { $0 * coef })
    }

    /// In-batch InfoNCE: rows 0..<B of `e` (2B, C) are queries, rows B..<2B their positives;
    /// L = (1/B) Σ_i [logsumexp_j cos(q_i, p_j)/τ − cos(q_i, p_i)/τ].
    public static func inBatchInfoNCE(_ e: [Double], pairs B: Int, dim C: Int, tau: Double) -> Double {
        func u(_ i: Int) -> [Double] { Ref.l2normalize(Array(e[(i * C)..<((i + 1) * C)])) }
        var loss = 0.0
        for i in 0..<B {
            let q = u(i)
            let z = (0..<B).map { j in zip(q, u(B + j)).map(*).reduce(0, +) / tau }
            let mx = z.max()!
            loss += mx + log(z.map { exp($0 - mx) }.reduce(0, +)) - z[i]
        }
        return loss / Double(B)
    }
}
