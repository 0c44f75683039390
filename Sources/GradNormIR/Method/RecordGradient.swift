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

/// A document query encoded on its own (see `RecordGradient.encodeQuery`).
public struct EncodedQuery: Sendable {
    /// Its token ids, special tokens included.
    public let ids: [Int]
    /// The encoder's last-layer token states (T, C), row-major, T = `ids.count`.
    public let lastHiddenStates: [Float]
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
    let encoder: Encoder
    /// Same layout as the parameters. Only the rows of the word-embedding table that a record's
    /// tokens use are ever written (and zeroed again after the record).
    private let grads: FlatBuffer
    private var dEmbeddings: [Float] = []
    /// Slots that take part in the norm: all but the position embeddings.
    private let normSlots: [TensorSlot]

    /// `memory`: what the forward keeps for the backward (`.recomputeFeedForward` needs less
    /// memory and a little more arithmetic; the results are the same bits).
    public init(layout: ParameterLayout, parameters: FlatBuffer, memory: ActivationMemory = .saveAll) {
        self.layout = layout
        self.encoder = Encoder(layout: layout, parameters: parameters, memory: memory)
        self.grads = FlatBuffer(count: layout.count)
        self.normSlots = layout.tensors.filter { $0.offset != layout.embeddings.position }
        clearDenseGradients()
    }

    /// Writes zeros over every tensor's gradient but the word-embedding table's. After a record,
    /// this clears what it wrote; at creation it also makes the kernel allocate the (lazily zeroed)
    /// pages on a write: the backward's accumulating products would otherwise read them first —
    /// mapping the shared zero page — and fault again on the write, and with two workers each of
    /// those faults flushes the other core's TLB (a 6 × 512-token record's first backward at 2
    /// threads: about 0.4 s of CPU in those flushes, measured with perf).
    private func clearDenseGradients() {
        let wordSlot = layout.embeddings.word
        grads.withUnsafeMutableBufferPointer { g in
            for slot in normSlots where slot.offset != wordSlot {
                (g.baseAddress! + slot.offset).update(repeating: 0, count: slot.count)
            }
        }
    }

    public convenience init(retriever: Retriever, memory: ActivationMemory = .saveAll) {
        self.init(layout: retriever.checkpoint.layout, parameters: retriever.checkpoint.parameters, memory: memory)
    }

    /// Encodes a document query alone (eval mode, activations kept for a backward pass) and
    /// returns its last-layer token states, the input of the dropout positives (METHOD.md
    /// step 2). The records of this query that `compute(query:…)` takes next, on this scorer and
    /// with no other call in between, reuse this forward pass instead of recomputing it.
    public func encodeQuery(_ ids: [Int]) -> EncodedQuery {
        encoder.forward(PackedBatch([ids]), saveForBackward: true)
        return EncodedQuery(ids: ids, lastHiddenStates: encoder.withLastHiddenStates { Array($0) })
    }

    /// `compute(query:positive:negatives:…)` for a query encoded by `encodeQuery`: its forward
    /// pass is reused (the result is the same as recomputing it).
    public func compute(query: EncodedQuery, positive: [Int], negatives: [[Int]], temperature: Double) -> RecordResult {
        compute(query: query.ids, positive: positive, negatives: negatives, temperature: temperature)
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
        // The query is usually the previous record's too (one document, many records), or was
        // just encoded by `encodeQuery`: its forward pass is then reused, not recomputed.
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
                    for r in rows { ss += VectorMath.sumOfSquares(g.baseAddress! + slot.offset + r * C, count: C) }
                } else {
                    ss = VectorMath.sumOfSquares(g.baseAddress! + slot.offset, count: slot.count)
                }
                total += ss
                if wantTensorNorms { perTensor[slot.name] = ss.squareRoot() }
            }
        }
        inspect?(grads)
        // Zero what this record wrote, ready for the next one.
        clearDenseGradients()
        grads.withUnsafeMutableBufferPointer { g in
            for r in rows { (g.baseAddress! + wordSlot + r * C).update(repeating: 0, count: C) }
        }
        return RecordResult(loss: loss, gradNorm: total.squareRoot(), tensorNorms: perTensor)
    }
}
