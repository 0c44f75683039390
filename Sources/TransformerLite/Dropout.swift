/// Element-wise dropout with an explicit, seeded Bernoulli mask.
///
/// Each element is kept with probability 1 − p. `rescale` selects the inverted variant
/// (kept elements × 1/(1−p), PyTorch's `nn.Dropout`) or the plain one (kept elements unchanged).
public enum Dropout {
    /// Draws the mask (1 = kept, 0 = dropped) for `count` elements from `rng`.
    public static func makeMask(_ mask: UnsafeMutablePointer<UInt8>, count: Int, p: Float,
                                rng: inout SplitMix64) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1)")
        for i in 0..<count { mask[i] = rng.nextUnitFloat() < p ? 0 : 1 }
    }

    /// `out = input ⊙ mask · scale`, scale = 1/(1−p) when `rescale`, else 1. `out` may alias `input`.
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                               mask: UnsafePointer<UInt8>, count: Int, p: Float, rescale: Bool) {
        let scale: Float = rescale ? 1 / (1 - p) : 1
        for i in 0..<count { out[i] = mask[i] != 0 ? input[i] * scale : 0 }
    }

    /// `dInput += dOut ⊙ mask · scale`.
    public static func backward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                mask: UnsafePointer<UInt8>, count: Int, p: Float, rescale: Bool) {
        let scale: Float = rescale ? 1 / (1 - p) : 1
        for i in 0..<count where mask[i] != 0 { dInput[i] += dOut[i] * scale }
    }
}
