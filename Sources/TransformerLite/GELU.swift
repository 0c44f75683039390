import CKernels

/// The exact (erf) Gaussian error linear unit used by BERT's feed-forward blocks:
///   gelu(x) = x·Φ(x) = ½·x·(1 + erf(x/√2)),   gelu'(x) = Φ(x) + x·φ(x),  φ(x) = e^{−x²/2}/√(2π).
/// Φ is a Chebyshev fit of erfc (Numerical Recipes §6.2, absolute error < 4e-7), evaluated eight
/// lanes at a time by the C kernels of `CKernels` (AVX2 and FMA where the CPU has them).
public enum GELU {
    /// `out[i] = gelu(input[i])` for `count` elements. `out` may alias `input`.
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        gni_gelu_forward(out, input, count)
    }

    /// `dInput[i] = dOut[i] · gelu'(input[i])` (overwrites). `dInput` may alias `dOut`, so the
    /// encoder's backward turns the GELU output's gradient into the pre-activation's in place.
    public static func backward(dInput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                dOut: UnsafePointer<Float>, count: Int) {
        gni_gelu_backward(dInput, input, dOut, count)
    }
}
