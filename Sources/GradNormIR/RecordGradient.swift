import Foundation
import TransformerLite

/// The loss and gradient norm of one GradNormIR record (METHOD.md §"Per-document score", steps 4–5).
public struct RecordResult: Sendable, Equatable {
    /// InfoNCE loss L = −log softmax(cos(d, c)/τ)₀ over c = [positive, negatives…].
    public let loss: Double
    /// Global L2 norm of ∂L/∂θ over every encoder parameter except the position embeddings.
    public let gradNorm: Double
    /// L2 norm of each tensor's gradient, by Hugging Face name (position embeddings excluded),
    /// when requested.
    public let tensorNorms: [String: Double]
}

/// Computes record gradients with one encoder and one gradient buffer, reused across records
/// (no allocation per record once the workspace has grown to the largest record).
///
/// A record is (document query d, positive x, negatives n₁…n_k): all 2 + k sequences are encoded
/// together by the shared encoder in eval mode (no dropout), scored by cosine with temperature τ,
/// and the InfoNCE loss is backpropagated through every sequence at the unchanged weights. The
/// position embeddings are frozen (the authors' setting); the pooler is not part of the model.
public final class RecordGradient {
    public let layout: ParameterLayout
    public let encoder: Encoder
    /// Same layout as the parameters. Only the rows of the word-embedding table that a record's
    /// tokens use are ever written (and zeroed again after the record).
    private let grads: FlatBuffer
    private var dEmbeddings: [Float] = []
    /// Slots that take part in the norm: all but the position embeddings.
    private let normSlots: [TensorSlot]

    public init(layout: ParameterLayout, parameters: FlatBuffer) {
        self.layout = layout
        self.encoder = Encoder(layout: layout, parameters: parameters)
        self.grads = FlatBuffer(count: layout.count)
        self.normSlots = layout.tensors.filter { $0.offset != layout.embeddings.position }
    }

    public convenience init(retriever: Retriever) {
        self.init(layout: retriever.checkpoint.layout, parameters: retriever.checkpoint.parameters)
    }

    /// The record's loss and gradient norm. `query`, `positive` and each negative are token-id
    /// sequences with their special tokens, already truncated to the model's limits.
    /// `inspect`, if given, sees the full gradient buffer (parameter layout) before it is cleared.
    public func compute(query: [Int], positive: [Int], negatives: [[Int]], temperature: Double = 0.05,
                        tensorNorms wantTensorNorms: Bool = false,
                        inspect: ((FlatBuffer) -> Void)? = nil) -> RecordResult {
        precondition(!negatives.isEmpty, "RecordGradient: at least one negative is needed")
        let sequences = [query, positive] + negatives
        let S = sequences.count, C = layout.config.hiddenSize
        let batch = PackedBatch(sequences)
        // The query is usually the previous record's too (one document, many records): its
        // forward pass is then reused, not recomputed.
        encoder.forward(batch, saveForBackward: true, reusingFirst: 1)
        if dEmbeddings.count < S * C { dEmbeddings = [Float](repeating: 0, count: S * C) }
        let loss = encoder.withOutput { out in
            dEmbeddings.withUnsafeMutableBufferPointer { d in
                InfoNCE.forwardBackward(embeddings: out.baseAddress!, rows: S, dim: C, temperature: temperature,
                                        dEmbeddings: d.baseAddress!)
            }
        }
        dEmbeddings.withUnsafeBufferPointer { d in
            encoder.backward(dOutput: d.baseAddress!, into: grads, freezePositions: true)
        }

        // Norms: dense tensors whole; the word-embedding table only on the rows used.
        let wordSlot = layout.embeddings.word
        let rows = Array(Set(batch.ids.map(Int.init))).sorted()
        var total = 0.0
        var perTensor: [String: Double] = [:]
        grads.withUnsafeMutableBufferPointer { g in
            for slot in normSlots {
                var ss = 0.0
                if slot.offset == wordSlot {
                    for r in rows { ss += sumOfSquares(g.baseAddress! + slot.offset + r * C, count: C) }
                } else {
                    ss = sumOfSquares(g.baseAddress! + slot.offset, count: slot.count)
                }
                total += ss
                if wantTensorNorms { perTensor[slot.name] = ss.squareRoot() }
            }
        }
        inspect?(grads)
        grads.withUnsafeMutableBufferPointer { g in
            // Zero what this record wrote, ready for the next one.
            for slot in normSlots where slot.offset != wordSlot {
                (g.baseAddress! + slot.offset).update(repeating: 0, count: slot.count)
            }
            for r in rows { (g.baseAddress! + wordSlot + r * C).update(repeating: 0, count: C) }
        }
        return RecordResult(loss: loss, gradNorm: total.squareRoot(), tensorNorms: perTensor)
    }

}

/// Σ x² in Double, eight Float lanes at a time.
@inline(__always)
func sumOfSquares(_ p: UnsafePointer<Float>, count: Int) -> Double {
    var acc = SIMD8<Double>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        let v = SIMD8<Double>(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self))
        acc += v * v
        i += 8
    }
    var s = acc.sum()
    while i < count { let v = Double(p[i]); s += v * v; i += 1 }
    return s
}

@inline(__always)
func sumOfSquares(_ p: UnsafeMutablePointer<Float>, count: Int) -> Double { sumOfSquares(UnsafePointer(p), count: count) }
