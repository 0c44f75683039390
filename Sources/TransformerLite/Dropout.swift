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

/// Training-mode hidden dropout for one forward pass of the `Encoder`: BERT's dropout on the
/// embeddings' output and on the attention and feed-forward outputs before each residual sum
/// (inverted: kept elements × 1/(1−p)), with masks drawn from `seed`. Dropout on the attention
/// probabilities is not applied.
///
/// Site s of a pass (0: the embeddings; 1 + 2l: layer l's attention output; 2 + 2l: its
/// feed-forward output) draws its (tokens × hidden) mask, row by row of the packed batch, from
/// `SplitMix64(seed ⊕ s·φ)` — independent of how the work is split over the cores.
public struct HiddenDropout: Sendable, Equatable {
    public var p: Float
    public var seed: UInt64

    public init(p: Float, seed: UInt64) {
        precondition(p >= 0 && p < 1, "HiddenDropout: p must be in [0, 1)")
        self.p = p
        self.seed = seed
    }

    /// The generator of site `site`'s mask.
    func generator(site: Int) -> SplitMix64 {
        SplitMix64(seed: seed ^ (UInt64(site) &* 0x9E37_79B9_7F4A_7C15))
    }
}
