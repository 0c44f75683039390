/// Layer normalisation over the last dimension (Ba et al. 2016; BERT's post-LN blocks).
///
/// Forward, per row r of `input` (n, C):
///   μ = mean(x), σ² = mean((x − μ)²), rstd = 1/√(σ² + ε), x̂ = (x − μ)·rstd, y = x̂·γ + β.
/// The forward saves μ and rstd (n each) for the backward.
public enum LayerNorm {
    /// - Parameters:
    ///   - out: (n, C) normalised output.
    ///   - mean, rstd: (n) saved statistics.
    ///   - input: (n, C).
    ///   - weight, bias: (C) γ and β.
    public static func forward(
        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        rows n: Int, dim C: Int, eps: Float
    ) {
        for r in 0..<n {
            let x = input + r * C
            let y = out + r * C
            // Two-pass statistics: the mean first, then the centred second moment (stable in fp32).
            var s: Float = 0
            for i in 0..<C { s += x[i] }
            let m = s / Float(C)
            var v: Float = 0
            for i in 0..<C { let d = x[i] - m; v += d * d }
            let rs = 1 / (v / Float(C) + eps).squareRoot()
            for i in 0..<C { y[i] = (x[i] - m) * rs * weight[i] + bias[i] }
            mean[r] = m
            rstd[r] = rs
        }
    }

    /// Recomputes the forward output from the saved statistics, bit-identical to `forward`'s.
    public static func apply(
        out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows n: Int, dim C: Int
    ) {
        for r in 0..<n {
            let x = input + r * C, y = out + r * C
            let m = mean[r], rs = rstd[r]
            for i in 0..<C { y[i] = (x[i] - m) * rs * weight[i] + bias[i] }
        }
    }

    /// Backward, accumulating into `dInput`, `dWeight`, `dBias` (either may be nil).
    ///
    /// With x̂ = (x − μ)·rstd and g = dy ⊙ γ:
    ///   dβ += dy, dγ += dy ⊙ x̂,
    ///   dx += rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)).
    public static func backward(
        dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
        dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        rows n: Int, dim C: Int
    ) {
        for r in 0..<n {
            let x = input + r * C, dy = dOut + r * C, dx = dInput + r * C
            let m = mean[r], rs = rstd[r]
            var sumG: Float = 0, sumGX: Float = 0
            for i in 0..<C {
                let g = dy[i] * weight[i]
                sumG += g
                sumGX += g * (x[i] - m) * rs
            }
            let meanG = sumG / Float(C), meanGX = sumGX / Float(C)
            for i in 0..<C {
                let xh = (x[i] - m) * rs
                dx[i] += rs * (dy[i] * weight[i] - meanG - xh * meanGX)
            }
        }
        if dWeight != nil || dBias != nil {
            parameterGradients(dWeight: dWeight, dBias: dBias, dOut: dOut, input: input, mean: mean, rstd: rstd,
                               rows: n, dim: C, columns: 0..<C)
        }
    }

    /// The γ and β gradients alone, for the features in `columns`: `dγ += Σ_r dy ⊙ x̂`,
    /// `dβ += Σ_r dy`. Separate from the input gradient so that workers can split rows for one
    /// and features for the other without sharing writes.
    public static func parameterGradients(
        dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
        dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows n: Int, dim C: Int, columns: Range<Int>
    ) {
        for r in 0..<n {
            let x = input + r * C, dy = dOut + r * C
            let m = mean[r], rs = rstd[r]
            if let dWeight { for i in columns { dWeight[i] += dy[i] * (x[i] - m) * rs } }
            if let dBias { for i in columns { dBias[i] += dy[i] } }
        }
    }
}
