import Foundation

/// Hyper-parameters of AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), with
/// PyTorch's defaults (`torch.optim.AdamW`) except the learning rate.
public struct AdamWConfig: Codable, Sendable, Equatable {
    public var learningRate: Double = 2e-5
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0.01

    public init(learningRate: Double = 2e-5, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, weightDecay: Double = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// AdamW over one flat parameter buffer and its gradient buffer (same layout, STYLE.md §3).
///
/// One step t (1-based), element-wise, exactly as `torch.optim.AdamW` (non-AMSGrad) computes it:
///
///   θ ← θ · (1 − lr·λ)                       decoupled weight decay
///   m ← β₁ m + (1 − β₁) g                     first moment
///   v ← β₂ v + (1 − β₂) g²                    second moment
///   θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)   bias-corrected update
///
/// Every element is updated, whether or not its gradient is zero (as PyTorch does for a dense
/// gradient): the moments decay and the weight decay applies. The moments are Float32 buffers of
/// the parameters' size; the scalars are computed in Float64.
public final class AdamW {
    public let config: AdamWConfig
    /// First moment m, same layout as the parameters.
    public let m: FlatBuffer
    /// Second moment v, same layout as the parameters.
    public let v: FlatBuffer
    /// Steps taken so far (t of the last step).
    public private(set) var stepCount: Int

    /// Fresh moments (zero) for `count` parameters.
    public init(count: Int, config: AdamWConfig) {
        self.config = config
        self.m = FlatBuffer(count: count)
        self.v = FlatBuffer(count: count)
        self.stepCount = 0
    }

    /// Resumes from saved moments and step count.
    public init(config: AdamWConfig, m: FlatBuffer, v: FlatBuffer, stepCount: Int) {
        precondition(m.count == v.count, "AdamW: moment buffers differ in size")
        precondition(stepCount >= 0, "AdamW: negative step count")
        self.config = config
        self.m = m
        self.v = v
        self.stepCount = stepCount
    }

    /// One step over every parameter. `learningRate` overrides the config's (for a schedule).
    /// The gradients are read, not cleared.
    public func step(parameters: FlatBuffer, gradients: FlatBuffer, learningRate: Double? = nil) {
        precondition(parameters.count == m.count && gradients.count == m.count,
                     "AdamW.step: parameter, gradient and moment buffers must have the same size")
        stepCount += 1
        let c = config
        let lr = learningRate ?? c.learningRate
        let t = Double(stepCount)
        let bc1 = 1 - pow(c.beta1, t), bc2 = 1 - pow(c.beta2, t)
        let decay = Float(1 - lr * c.weightDecay)
        let stepSize = Float(lr / bc1)
        let invSqrtBC2 = Float(1 / bc2.squareRoot())
        let b1 = Float(c.beta1), b2 = Float(c.beta2), eps = Float(c.epsilon)
        let ob1 = Float(1 - c.beta1), ob2 = Float(1 - c.beta2)
        let p = parameters.base, g = gradients.base, mm = m.base, vv = v.base
        Parallel.chunks(m.count, minPerChunk: 1 << 16) { r in
            for i in r {
                let gi = g[i]
                let mi = b1 * mm[i] + ob1 * gi
                let vi = b2 * vv[i] + ob2 * gi * gi
                mm[i] = mi
                vv[i] = vi
                let denom = vi.squareRoot() * invSqrtBC2 + eps
                p[i] = p[i] * decay - stepSize * (mi / denom)
            }
        }
    }
}

extension AdamW {
    /// θ ← θ − rate · (θ − θ₀), element-wise (a decoupled pull toward reference parameters θ₀,
    /// e.g. the starting weights of a fine-tuning: L2-SP applied like AdamW's weight decay).
    /// Precondition: 0 ≤ rate < 1.
    public static func pull(_ parameters: FlatBuffer, toward anchor: FlatBuffer, rate: Double) {
        precondition(parameters.count == anchor.count, "AdamW.pull: buffers differ in size")
        precondition(rate >= 0 && rate < 1, "AdamW.pull: rate must be in [0, 1)")
        let r = Float(rate), p = parameters.base, a = anchor.base
        Parallel.chunks(parameters.count, minPerChunk: 1 << 16) { range in
            for i in range { p[i] -= r * (p[i] - a[i]) }
        }
    }
}

/// Learning rate with linear warm-up from 0 to the peak over `warmupSteps`, then linear decay to 0
/// at `totalSteps` (Hugging Face's `get_linear_schedule_with_warmup`, used by sentence-transformers).
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
    }

    /// The rate used for step `t` (1-based, as AdamW counts): the schedule's value after t − 1
    /// scheduler steps, as PyTorch's `LambdaLR` gives it to the t-th `optimizer.step()`.
    public func rate(step t: Int) -> Double {
        let s = Double(max(0, t - 1))
        if s < Double(warmupSteps) { return peak * s / Double(max(1, warmupSteps)) }
        let remaining = Double(totalSteps) - s
        let span = Double(max(1, totalSteps - warmupSteps))
        return peak * max(0, remaining / span)
    }
}

/// Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`: with n = ‖g‖₂ over every
/// element, g ← g · min(1, max / (n + 1e-6)).
public enum GradientClipping {
    /// Clips in place and returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ gradients: FlatBuffer, maxNorm: Double) -> Double {
        precondition(maxNorm > 0, "GradientClipping: maxNorm must be positive")
        let n = gradients.l2Norm()
        let coef = maxNorm / (n + 1e-6)
        if coef < 1 {
            let s = Float(coef)
            let g = gradients.base
            Parallel.chunks(gradients.count, minPerChunk: 1 << 16) { r in
                for i in r { g[i] *= s }
            }
        }
        return n
    }
}
