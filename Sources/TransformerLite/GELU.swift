import Foundation

/// The exact (erf) Gaussian error linear unit used by BERT's feed-forward blocks:
///   gelu(x) = ½·x·(1 + erf(x/√2)),   gelu'(x) = ½·(1 + erf(x/√2)) + x·φ(x),  φ(x) = e^{−x²/2}/√(2π).
public enum GELU {
    @usableFromInline static let invSqrt2: Float = 0.70710678118654752
    @usableFromInline static let invSqrt2Pi: Float = 0.39894228040143268

    /// `out[i] = gelu(input[i])` for `count` elements. `out` may alias `input`.
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            out[i] = 0.5 * x * (1 + erf(x * invSqrt2))
        }
    }

    /// `dInput[i] += dOut[i] · gelu'(input[i])`.
    public static func backward(dInput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                dOut: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            let cdf = 0.5 * (1 + erf(x * invSqrt2))
            let pdf = invSqrt2Pi * exp(-0.5 * x * x)
            dInput[i] += dOut[i] * (cdf + x * pdf)
        }
    }
}
