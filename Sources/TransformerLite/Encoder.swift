/// A batch of token-id sequences packed one after another without padding.
public struct PackedBatch: Sendable {
    /// All token ids, sequence after sequence.  (n)
    public let ids: [Int32]
    /// Position of each token inside its own sequence.  (n)
    public let positions: [Int32]
    /// Where each sequence sits.
    public let spans: [SequenceSpan]
    /// Total number of tokens n.
    public var tokenCount: Int { ids.count }
    /// Σ over sequences of T², the size of one head's worth of attention probabilities.
    public let squaredLengths: Int
    /// The longest sequence.
    public let maxLength: Int

    /// Packs `sequences` (each non-empty). Ids are checked against nothing here: the encoder
    /// checks them against its vocabulary and position table.
    public init(_ sequences: [[Int]], heads: Int) {
        var ids: [Int32] = [], positions: [Int32] = [], spans: [SequenceSpan] = []
        ids.reserveCapacity(sequences.reduce(0) { $0 + $1.count })
        positions.reserveCapacity(ids.capacity)
        var start = 0, probs = 0, sq = 0, mx = 0
        for seq in sequences {
            precondition(!seq.isEmpty, "PackedBatch: empty sequence")
            for (p, id) in seq.enumerated() {
                ids.append(Int32(truncatingIfNeeded: id))
                positions.append(Int32(p))
            }
            spans.append(SequenceSpan(start: start, length: seq.count, probsOffset: probs))
            start += seq.count
            probs += heads * seq.count * seq.count
            sq += seq.count * seq.count
            mx = max(mx, seq.count)
        }
        self.ids = ids
        self.positions = positions
        self.spans = spans
        self.squaredLengths = sq
        self.maxLength = mx
    }
}

/// Offsets of every saved activation inside one flat activation buffer, for a capacity of
/// `tokens` packed tokens, `sequences` sequences and `probs` attention probabilities per layer.
struct ActivationLayout {
    let tokens: Int, sequences: Int, probs: Int, maxLength: Int
    let layersSaved: Int
    /// Whether every layer's activations and the backward scratch are kept.
    let savesAll: Bool
    // Embedding block.
    let embSum: Int      // (n, C) word + position + type, before LayerNorm
    let embMean: Int     // (n)
    let embRstd: Int     // (n)
    /// hidden[l] (n, C): input of layer l; hidden[L] is the last layer's output.
    let hidden: [Int]
    let layers: [Offsets]
    let pooled: Int      // (S, C) pooled, before normalisation
    let output: Int      // (S, C) final embeddings (normalised if the config says so)
    let norms: Int       // (S)
    // Backward scratch.
    let dH: Int, dA: Int, dB: Int   // (n, C) each
    let dQKV: Int                   // (n, 3C)
    let dI1: Int, dI2: Int          // (n, I) each
    let dPooled: Int                // (S, C)
    let dScratch: Int               // (workers · maxT²)
    let scratchWorkers: Int
    let count: Int

    struct Offsets {
        let qkv: Int     // (n, 3C)
        let probs: Int   // (H·ΣT²)
        let ctx: Int     // (n, C)
        let res1: Int    // (n, C) x + attention output, before LayerNorm 1
        let ln1Mean: Int, ln1Rstd: Int  // (n)
        let h1: Int      // (n, C)
        let ffnPre: Int  // (n, I)
        let ffnAct: Int  // (n, I)
        let res2: Int    // (n, C) h1 + feed-forward output, before LayerNorm 2
        let ln2Mean: Int, ln2Rstd: Int  // (n)
    }

    init(config c: EncoderConfig, tokens n: Int, sequences S: Int, probs P: Int, maxLength: Int, saveAll: Bool) {
        let C = c.hiddenSize, I = c.intermediateSize, L = c.numLayers
        var o = 0
        func take(_ k: Int) -> Int {
            let r = o
            o += (k + 15) / 16 * 16  // keep every tensor 64-byte aligned
            return r
        }
        self.tokens = n; self.sequences = S; self.probs = P; self.maxLength = maxLength
        layersSaved = saveAll ? L : 1
        savesAll = saveAll
        embSum = take(n * C); embMean = take(n); embRstd = take(n)
        // Without saving, layers alternate between two hidden buffers.
        let hiddenCount = saveAll ? L + 1 : 2
        let hb = (0..<hiddenCount).map { _ in take(n * C) }
        hidden = (0...L).map { saveAll ? hb[$0] : hb[$0 % 2] }
        var ls: [Offsets] = []
        for _ in 0..<layersSaved {
            ls.append(Offsets(qkv: take(n * 3 * C), probs: take(P), ctx: take(n * C), res1: take(n * C),
                              ln1Mean: take(n), ln1Rstd: take(n), h1: take(n * C),
                              ffnPre: take(n * I), ffnAct: take(n * I), res2: take(n * C),
                              ln2Mean: take(n), ln2Rstd: take(n)))
        }
        layers = ls
        pooled = take(S * C); output = take(S * C); norms = take(S)
        if saveAll {
            dH = take(n * C); dA = take(n * C); dB = take(n * C); dQKV = take(n * 3 * C)
            dI1 = take(n * I); dI2 = take(n * I); dPooled = take(S * C); dScratch = take(Attention.scratchCount(maxLength: maxLength))
        } else {
            dH = 0; dA = 0; dB = 0; dQKV = 0; dI1 = 0; dI2 = 0; dPooled = 0; dScratch = 0
        }
        scratchWorkers = Parallel.workers
        count = o
    }

    func layer(_ l: Int) -> Offsets { savesAll ? layers[l] : layers[0] }
}

/// A BERT-family encoder over one flat parameter buffer (STYLE.md §3), with a forward pass that
/// saves what its backward pass needs, and a backward pass that accumulates into a gradient
/// buffer with the same layout.
///
/// Not thread-safe: one `Encoder` owns one activation workspace. Use one encoder per thread (they
/// may share the same `parameters`).
public final class Encoder {
    public let layout: ParameterLayout
    public let parameters: FlatBuffer
    public var config: EncoderConfig { layout.config }

    private var workspace = FlatBuffer(count: 0)
    private var acts: ActivationLayout?
    private var batch: PackedBatch?

    public init(layout: ParameterLayout, parameters: FlatBuffer) {
        precondition(parameters.count == layout.count, "Encoder: parameter buffer does not match its layout")
        self.layout = layout
        self.parameters = parameters
    }

    /// Encodes token-id sequences (each already with its special tokens, 1 ≤ length ≤ max
    /// positions, every id < vocabulary size) and returns one embedding per sequence: pooled,
    /// and L2-normalised when the config says so.
    public func embed(_ sequences: [[Int]]) -> [[Float]] {
        if sequences.isEmpty { return [] }
        let b = PackedBatch(sequences, heads: config.numHeads)
        forward(b, saveForBackward: false)
        return outputRows()
    }

    /// The final embeddings of the last forward pass, one row per sequence.
    public func outputRows() -> [[Float]] {
        guard let a = acts, let b = batch else { return [] }
        let C = config.hiddenSize
        return (0..<b.spans.count).map { s in workspace.toArray((a.output + s * C)..<(a.output + (s + 1) * C)) }
    }

    /// Runs the encoder over a packed batch. With `saveForBackward`, every layer's activations
    /// are kept so that `backward` can run next; otherwise two layer buffers are reused.
    /// The workspace grows only when a batch needs more room than any before it.
    public func forward(_ b: PackedBatch, saveForBackward: Bool) {
        let c = config
        let C = c.hiddenSize, I = c.intermediateSize, H = c.numHeads, L = c.numLayers
        let n = b.tokenCount, S = b.spans.count
        precondition(S > 0, "Encoder.forward: empty batch")
        precondition(b.maxLength <= c.maxPositions, "Encoder.forward: sequence longer than the position table")
        for id in b.ids { precondition(id >= 0 && Int(id) < c.vocabSize, "Encoder.forward: token id \(id) out of range") }
        let a = reserve(tokens: n, sequences: S, probs: H * b.squaredLengths, maxLength: b.maxLength,
                        saveAll: saveForBackward)
        batch = b
        let w = parameters.base
        let x = workspace.base
        let e = layout.embeddings
        b.ids.withUnsafeBufferPointer { ids in
            b.positions.withUnsafeBufferPointer { pos in
                Embedding.forward(out: x + a.embSum, ids: ids.baseAddress!, positions: pos.baseAddress!,
                                  wte: w + e.word, wpe: w + e.position, wtt: w + e.tokenType, tokens: n, dim: C)
            }
        }
        layerNorm(out: x + a.hidden[0], mean: x + a.embMean, rstd: x + a.embRstd, input: x + a.embSum,
                  weight: w + e.lnWeight, bias: w + e.lnBias, rows: n)
        for l in 0..<L {
            let p = layout.layers[l], s = a.layer(l)
            let hin = x + a.hidden[l], hout = x + a.hidden[l + 1]
            // Self-attention block: qkv = h·Wqkvᵀ + b; ctx = attention; res1 = h + ctx·Woᵀ + bo.
            Linear.forward(y: x + s.qkv, x: hin, weight: w + p.qkvWeight, bias: w + p.qkvBias,
                               rows: n, inDim: C, outDim: 3 * C)
            Attention.forward(ctx: x + s.ctx, probs: x + s.probs, qkv: x + s.qkv, spans: b.spans, dim: C, heads: H)
            Linear.forward(y: x + s.res1, x: x + s.ctx, weight: w + p.attnOutWeight, bias: w + p.attnOutBias,
                               rows: n, inDim: C, outDim: C)
            addInPlace(x + s.res1, hin, count: n * C)
            layerNorm(out: x + s.h1, mean: x + s.ln1Mean, rstd: x + s.ln1Rstd, input: x + s.res1,
                      weight: w + p.ln1Weight, bias: w + p.ln1Bias, rows: n)
            // Feed-forward block: res2 = h1 + gelu(h1·W1ᵀ + b1)·W2ᵀ + b2.
            Linear.forward(y: x + s.ffnPre, x: x + s.h1, weight: w + p.ffnInWeight, bias: w + p.ffnInBias,
                               rows: n, inDim: C, outDim: I)
            Parallel.chunks(n * I, minPerChunk: 4096) { r in
                GELU.forward(out: x + s.ffnAct + r.lowerBound, input: x + s.ffnPre + r.lowerBound, count: r.count)
            }
            Linear.forward(y: x + s.res2, x: x + s.ffnAct, weight: w + p.ffnOutWeight, bias: w + p.ffnOutBias,
                               rows: n, inDim: I, outDim: C)
            addInPlace(x + s.res2, x + s.h1, count: n * C)
            layerNorm(out: hout, mean: x + s.ln2Mean, rstd: x + s.ln2Rstd, input: x + s.res2,
                      weight: w + p.ln2Weight, bias: w + p.ln2Bias, rows: n)
        }
        pool(from: x + a.hidden[L])
    }

    /// Recomputes the pooled (and normalised) outputs from token states `hidden` (n, C) of the
    /// current batch — by default the last layer's; a caller may pass perturbed states.
    public func pool(from hidden: UnsafePointer<Float>) {
        guard let a = acts, let b = batch else { preconditionFailure("pool before forward") }
        let C = config.hiddenSize, S = b.spans.count
        let x = workspace.base
        Pooling.forward(out: x + a.pooled, hidden: hidden, spans: b.spans, dim: C, mode: config.pooling)
        if config.normalize {
            L2Normalize.forward(out: x + a.output, norms: x + a.norms, input: x + a.pooled, rows: S, dim: C)
        } else {
            (x + a.output).update(from: x + a.pooled, count: S * C)
        }
    }

    /// Reads the last layer's token states of the current batch, (n, C), inside `body`.
    public func withLastHiddenStates<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        guard let a = acts, let b = batch else { preconditionFailure("no forward pass yet") }
        return try body(UnsafeBufferPointer(start: workspace.base + a.hidden[config.numLayers],
                                            count: b.tokenCount * config.hiddenSize))
    }

    /// Reads the final embeddings of the current batch, (S, C), inside `body`.
    public func withOutput<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        guard let a = acts, let b = batch else { preconditionFailure("no forward pass yet") }
        return try body(UnsafeBufferPointer(start: workspace.base + a.output, count: b.spans.count * config.hiddenSize))
    }

    /// Backpropagates `dOutput` (S, C) — the loss gradient with respect to the final embeddings
    /// of the last `forward(_, saveForBackward: true)` — into `grads` (same layout as the
    /// parameters), accumulating. Position embeddings get no gradient when `freezePositions`.
    public func backward(dOutput: UnsafePointer<Float>, into grads: FlatBuffer, freezePositions: Bool) {
        guard let a = acts, let b = batch, a.savesAll else {
            preconditionFailure("Encoder.backward needs a forward pass with saveForBackward: true")
        }
        precondition(grads.count == layout.count, "Encoder.backward: gradient buffer does not match the layout")
        let c = config
        let C = c.hiddenSize, I = c.intermediateSize, H = c.numHeads, L = c.numLayers
        let n = b.tokenCount, S = b.spans.count
        let w = parameters.base, g = grads.base, x = workspace.base
        let e = layout.embeddings

        // Pooling and normalisation: dOutput → dPooled → dH (n, C).
        let dPooled = x + a.dPooled
        if c.normalize {
            dPooled.update(repeating: 0, count: S * C)
            L2Normalize.backward(dInput: dPooled, dOut: dOutput, out: x + a.output, norms: x + a.norms, rows: S, dim: C)
        } else {
            dPooled.update(from: dOutput, count: S * C)
        }
        let dH = x + a.dH, dX = x + a.dA
        let dR = x + a.dB
        dH.update(repeating: 0, count: n * C)
        Pooling.backward(dHidden: dH, dOut: dPooled, spans: b.spans, dim: C, mode: c.pooling)

        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = layout.layers[l], s = a.layer(l)
            let hin = x + a.hidden[l]
            // LayerNorm 2: dH → dRes2 (in dR).
            dR.update(repeating: 0, count: n * C)
            LayerNorm.backward(dInput: dR, dWeight: g + p.ln2Weight, dBias: g + p.ln2Bias, dOut: dH,
                               input: x + s.res2, mean: x + s.ln2Mean, rstd: x + s.ln2Rstd,
                               weight: w + p.ln2Weight, rows: n, dim: C)
            // res2 = h1 + ffnAct·W2ᵀ + b2: the residual passes dRes2 to h1 (dX), the product to ffnAct.
            dX.update(from: dR, count: n * C)
            let dAct = x + a.dI1, dPre = x + a.dI2
            dAct.update(repeating: 0, count: n * I)
            Linear.backward(dX: dAct, dW: g + p.ffnOutWeight, dB: g + p.ffnOutBias, dY: dR,
                                x: x + s.ffnAct, weight: w + p.ffnOutWeight, rows: n, inDim: I, outDim: C)
            dPre.update(repeating: 0, count: n * I)
            Parallel.chunks(n * I, minPerChunk: 4096) { r in
                let o = r.lowerBound
                GELU.backward(dInput: dPre + o, input: x + s.ffnPre + o, dOut: dAct + o, count: r.count)
            }
            Linear.backward(dX: dX, dW: g + p.ffnInWeight, dB: g + p.ffnInBias, dY: dPre,
                                x: x + s.h1, weight: w + p.ffnInWeight, rows: n, inDim: C, outDim: I)
            // LayerNorm 1: dH1 (dX) → dRes1 (dR).
            dR.update(repeating: 0, count: n * C)
            LayerNorm.backward(dInput: dR, dWeight: g + p.ln1Weight, dBias: g + p.ln1Bias, dOut: dX,
                               input: x + s.res1, mean: x + s.ln1Mean, rstd: x + s.ln1Rstd,
                               weight: w + p.ln1Weight, rows: n, dim: C)
            // res1 = hin + ctx·Woᵀ + bo: the residual passes dRes1 to hin (dH), the product to ctx.
            dH.update(from: dR, count: n * C)
            let dCtx = dX
            dCtx.update(repeating: 0, count: n * C)
            Linear.backward(dX: dCtx, dW: g + p.attnOutWeight, dB: g + p.attnOutBias, dY: dR,
                                x: x + s.ctx, weight: w + p.attnOutWeight, rows: n, inDim: C, outDim: C)
            let dQKV = x + a.dQKV
            dQKV.update(repeating: 0, count: n * 3 * C)
            Attention.backward(dqkv: dQKV, scratch: UnsafeMutableBufferPointer(start: x + a.dScratch, count: Attention.scratchCount(maxLength: b.maxLength)), dctx: dCtx, qkv: x + s.qkv, probs: x + s.probs,
                               spans: b.spans, dim: C, heads: H)
            Linear.backward(dX: dH, dW: g + p.qkvWeight, dB: g + p.qkvBias, dY: dQKV,
                                x: hin, weight: w + p.qkvWeight, rows: n, inDim: C, outDim: 3 * C)
        }
        // Embedding LayerNorm, then the sparse embedding-table gradients.
        dX.update(repeating: 0, count: n * C)
        LayerNorm.backward(dInput: dX, dWeight: g + e.lnWeight, dBias: g + e.lnBias, dOut: dH,
                           input: x + a.embSum, mean: x + a.embMean, rstd: x + a.embRstd,
                           weight: w + e.lnWeight, rows: n, dim: C)
        b.ids.withUnsafeBufferPointer { ids in
            b.positions.withUnsafeBufferPointer { pos in
                Embedding.backward(dWte: g + e.word, dWpe: freezePositions ? nil : g + e.position,
                                   dWtt: g + e.tokenType, dOut: dX, ids: ids.baseAddress!,
                                   positions: pos.baseAddress!, tokens: n, dim: C)
            }
        }
    }

    /// LayerNorm forward over `rows` rows of width C, rows split among the workers.
    private func layerNorm(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                           rstd: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows n: Int) {
        let C = config.hiddenSize, eps = config.layerNormEps
        Parallel.chunks(n, minPerChunk: 16) { r in
            let o = r.lowerBound
            LayerNorm.forward(out: out + o * C, mean: mean + o, rstd: rstd + o, input: input + o * C,
                              weight: weight, bias: bias, rows: r.count, dim: C, eps: eps)
        }
    }

    private func reserve(tokens n: Int, sequences S: Int, probs P: Int, maxLength: Int, saveAll: Bool) -> ActivationLayout {
        if let a = acts, a.tokens >= n, a.sequences >= S, a.probs >= P, a.maxLength >= maxLength,
           a.savesAll || !saveAll, !saveAll || a.scratchWorkers >= Parallel.workers {
            return a
        }
        // Grow to at least the old capacities, so alternating batch shapes do not reallocate.
        let old = acts
        let a = ActivationLayout(config: config, tokens: max(n, old?.tokens ?? 0),
                                 sequences: max(S, old?.sequences ?? 0), probs: max(P, old?.probs ?? 0),
                                 maxLength: max(maxLength, old?.maxLength ?? 0),
                                 saveAll: saveAll || (old?.savesAll ?? false))
        workspace = FlatBuffer(count: a.count)
        acts = a
        return a
    }
}

/// y += x elementwise, split among the workers.
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Parallel.chunks(count, minPerChunk: 16384) { r in
        for i in r { y[i] += x[i] }
    }
}
