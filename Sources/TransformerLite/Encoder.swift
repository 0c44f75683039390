/// Offsets of every buffer inside one flat activation workspace, for a capacity of `tokens`
/// packed tokens, `sequences` sequences and sequences of at most `maxLength` tokens.
///
/// Saved for the backward, per layer: qkv (3C), the two pre-LayerNorm sums res1 and res2 (C each),
/// the feed-forward pre-activation (I) and the LayerNorm statistics — 5C + I floats per token.
/// Everything else (layer inputs, h1, GELU output, attention probabilities and context) is
/// recomputed during the backward from these, bit-identically. With `recomputesFeedForward` the
/// layers share one pre-activation buffer and the backward recomputes it too (5C per token).
struct ActivationLayout {
    let tokens: Int, sequences: Int, maxLength: Int
    let savesAll: Bool
    let recomputesFeedForward: Bool
    let scratchWorkers: Int
    // Embedding block.
    let embSum: Int      // (n, C) word + position + type, before LayerNorm
    let embMean: Int, embRstd: Int   // (n)
    let layers: [Offsets]
    // Forward temporaries, reused by the backward (see `backward` for the aliasing).
    let hidA: Int, hidB: Int         // (n, C) alternating layer inputs/outputs
    let ctx: Int                     // (n, C) attention context
    let h1: Int                      // (n, C) LayerNorm-1 output
    let ffnAct: Int                  // (n, max(I, 3C)) GELU output; its gradient, dPre, dQKV in the backward
    let attnScratch: Int, attnScratchCount: Int
    let pooled: Int      // (S, C) pooled, before normalisation
    let output: Int      // (S, C) final embeddings (normalised if the config says so)
    let norms: Int       // (S)
    let dPooled: Int     // (S, C)
    let count: Int

    struct Offsets {
        let qkv: Int     // (n, 3C)
        let res1: Int    // (n, C) layer input + attention output, before LayerNorm 1
        let ln1Mean: Int, ln1Rstd: Int  // (n)
        let ffnPre: Int  // (n, I); one buffer shared by every layer when the backward recomputes it
        let res2: Int    // (n, C) h1 + feed-forward output, before LayerNorm 2
        let ln2Mean: Int, ln2Rstd: Int  // (n)
    }

    init(config c: EncoderConfig, tokens n: Int, sequences S: Int, maxLength: Int, saveAll: Bool,
         recomputeFeedForward: Bool) {
        let C = c.hiddenSize, I = c.intermediateSize, L = c.numLayers
        var o = 0
        func take(_ k: Int) -> Int {
            let r = o
            o += (k + 15) / 16 * 16  // keep every buffer 64-byte aligned
            return r
        }
        tokens = n; sequences = S; self.maxLength = maxLength; savesAll = saveAll
        let recompute = saveAll && recomputeFeedForward
        recomputesFeedForward = recompute
        scratchWorkers = Parallel.workers
        embSum = take(n * C); embMean = take(n); embRstd = take(n)
        let sharedPre = recompute ? take(n * I) : 0
        layers = (0..<(saveAll ? L : 1)).map { _ in
            Offsets(qkv: take(n * 3 * C), res1: take(n * C), ln1Mean: take(n), ln1Rstd: take(n),
                    ffnPre: recompute ? sharedPre : take(n * I),
                    res2: take(n * C), ln2Mean: take(n), ln2Rstd: take(n))
        }
        hidA = take(n * C); hidB = take(n * C); ctx = take(n * C); h1 = take(n * C)
        ffnAct = take(n * max(I, 3 * C))
        attnScratchCount = Attention.scratchCount(maxLength: maxLength)
        attnScratch = take(attnScratchCount)
        pooled = take(S * C); output = take(S * C); norms = take(S); dPooled = take(S * C)
        count = o
    }

    func layer(_ l: Int) -> Offsets { savesAll ? layers[l] : layers[0] }
    /// Where layer l's output (hidden[l+1]) is written in the forward.
    func hiddenOut(_ l: Int) -> Int { l % 2 == 0 ? hidA : hidB }
}

/// What a forward pass with `saveForBackward` keeps for the backward pass. Both give bit-identical
/// outputs and gradients; they trade memory for compute.
public enum ActivationMemory: String, Sendable, CaseIterable {
    /// Every layer's feed-forward pre-activation is kept: 5C + I floats per token and layer
    /// (all-MiniLM-L6-v2: 3,456), the fastest backward.
    case saveAll = "save-all"
    /// The feed-forward pre-activation is recomputed in the backward (one more (n, C)·(C, I)
    /// product per layer, about 9% more arithmetic per record): 5C floats per token and layer
    /// (1,920), plus one shared (n, I) buffer.
    case recomputeFeedForward = "recompute-feed-forward"
}

/// A BERT-family encoder over one flat parameter buffer (STYLE.md §3), with a forward pass that
/// saves what its backward pass needs, and a backward pass that accumulates into a gradient
/// buffer with the same layout.
///
/// Not thread-safe: one `Encoder` owns one activation workspace. Use one encoder per thread (they
/// may share the same `parameters`); each splits its own work over `Parallel.workers` cores.
public final class Encoder {
    public let layout: ParameterLayout
    public let parameters: FlatBuffer
    public var config: EncoderConfig { layout.config }
    /// What the forward keeps for the backward (fixed for the encoder's life).
    public let memory: ActivationMemory

    private var workspace = FlatBuffer(count: 0)
    private var acts: ActivationLayout?
    private var batch: PackedBatch?
    /// Offset of the last layer's token states of the current batch.
    private var lastHidden = 0
    /// Whether the current batch's activations are intact for a backward pass.
    private var backwardReady = false
    /// Whether the last forward saved every layer (its saved tensors survive a backward).
    private var savedForBackward = false
    /// Incremented whenever the workspace is reallocated (its contents are then lost).
    private var generation = 0
    /// The row ranges of the current batch that the forward computed in one pass each (each
    /// range's products ran over exactly those rows); a recomputation in the backward repeats them
    /// so that it rounds as the forward did.
    private var rowGroups: [Range<Int>] = []
    /// The hidden dropout of the current batch (nil: none) and its masks, site after site
    /// (`HiddenDropout`), each (tokens × hidden) bytes.
    private var dropout: HiddenDropout?
    private var dropoutMasks: [UInt8] = []

    public init(layout: ParameterLayout, parameters: FlatBuffer, memory: ActivationMemory = .saveAll) {
        precondition(parameters.count == layout.count, "Encoder: parameter buffer does not match its layout")
        self.layout = layout
        self.parameters = parameters
        self.memory = memory
    }

    /// Encodes token-id sequences (each already with its special tokens, 1 ≤ length ≤ max
    /// positions, every id < vocabulary size) and returns one embedding per sequence: pooled,
    /// and L2-normalised when the config says so.
    public func embed(_ sequences: [[Int]]) -> [[Float]] {
        if sequences.isEmpty { return [] }
        forward(PackedBatch(sequences), saveForBackward: false)
        return outputRows()
    }

    /// The final embeddings of the last forward pass, one row per sequence.
    public func outputRows() -> [[Float]] {
        guard let a = acts, let b = batch else { return [] }
        let C = config.hiddenSize
        return (0..<b.spans.count).map { s in workspace.toArray((a.output + s * C)..<(a.output + (s + 1) * C)) }
    }

    /// Runs the encoder over a packed batch. With `saveForBackward`, every layer's activations
    /// are kept so that `backward` can run next; otherwise one layer's buffers are reused.
    /// The workspace grows only when a batch needs more room than any before it.
    /// With `dropout`, BERT's training-mode hidden dropout is applied (see `HiddenDropout`), and a
    /// following `backward` differentiates through the same masks.
    public func forward(_ b: PackedBatch, saveForBackward: Bool, dropout: HiddenDropout? = nil) {
        forward(b, saveForBackward: saveForBackward, reusingFirst: 0, dropout: dropout)
    }

    /// Like `forward(_:saveForBackward:)`, but the first `k` sequences are not recomputed when
    /// the previous forward (also with `saveForBackward`) began with exactly the same sequences and
    /// the workspace kept its place: their saved activations and embeddings are reused — e.g. a
    /// query sequence shared by several batches that differ only after it. When reuse is not
    /// possible, the first `k` sequences are computed on their own and then the rest, so the
    /// matrix products have the same shapes either way and the result does not depend on whether
    /// reuse happened. (A single product over all rows could differ in the last bits: some BLAS
    /// kernels — OpenBLAS's Haswell and Zen sgemm — round a row differently depending on the
    /// number of rows in the product and on its place among them.)
    /// After a reusing forward, `withLastHiddenStates` is valid only for the recomputed rows.
    /// A forward with `dropout` reuses nothing (k must be 0), nor does the forward after it.
    /// - Returns: the number of sequences actually reused (0 or k).
    @discardableResult
    public func forward(_ b: PackedBatch, saveForBackward: Bool, reusingFirst k: Int,
                        dropout: HiddenDropout? = nil) -> Int {
        let c = config
        let C = c.hiddenSize, I = c.intermediateSize, H = c.numHeads, L = c.numLayers
        let n = b.tokenCount
        precondition(!b.spans.isEmpty, "Encoder.forward: empty batch")
        precondition(k >= 0 && k < b.spans.count, "Encoder.forward: can reuse only a strict prefix of the batch")
        precondition(dropout == nil || k == 0, "Encoder.forward: a forward with dropout reuses no prefix")
        precondition(b.maxLength <= c.maxPositions, "Encoder.forward: sequence longer than the position table")
        for id in b.ids { precondition(id >= 0 && Int(id) < c.vocabSize, "Encoder.forward: token id \(id) out of range") }
        let previous = (generation: generation, batch: batch, saved: savedForBackward, groups: rowGroups,
                        dropout: self.dropout)
        let a = reserve(tokens: n, sequences: b.spans.count, maxLength: b.maxLength, saveAll: saveForBackward)
        // Reuse only with the same workspace, saved activations without dropout, and an identical
        // prefix that the previous forward computed on its own (a pass of its own ended where the
        // prefix ends).
        var reused = 0
        let prefixTokens = k > 0 ? b.spans[k - 1].start + b.spans[k - 1].length : 0
        if k > 0, saveForBackward, previous.saved, previous.dropout == nil, previous.generation == generation,
           let pb = previous.batch,
           pb.spans.count >= k {
            if pb.spans[k - 1].start + pb.spans[k - 1].length == prefixTokens,
               previous.groups.contains(where: { $0.upperBound == prefixTokens }),
               pb.ids[0..<prefixTokens] == b.ids[0..<prefixTokens],
               zip(pb.spans.prefix(k), b.spans.prefix(k)).allSatisfy({ $0 == $1 }) {
                reused = k
            }
        }
        batch = b
        backwardReady = saveForBackward
        self.dropout = dropout
        if let d = dropout { drawMasks(d, tokens: n) }
        savedForBackward = saveForBackward
        let w = parameters.base
        let x = workspace.base
        let e = layout.embeddings
        let scratch = UnsafeMutableBufferPointer(start: x + a.attnScratch, count: a.attnScratchCount)
        /// Computes the rows of `spans` (consecutive sequences of the batch): embeddings, then
        /// every layer.
        func computeRows(of spans: [SequenceSpan]) {
            let r0 = spans[0].start                                        // first row
            let m = spans.last!.start + spans.last!.length - r0            // rows
            /// Row r0 of a (·, width) buffer at offset `o`.
            func rows(_ o: Int, _ width: Int) -> UnsafeMutablePointer<Float> { x + o + r0 * width }
            b.ids.withUnsafeBufferPointer { ids in
                b.positions.withUnsafeBufferPointer { pos in
                    Embedding.forward(out: rows(a.embSum, C), ids: ids.baseAddress! + r0, positions: pos.baseAddress! + r0,
                                      wte: w + e.word, wpe: w + e.position, wtt: w + e.tokenType, tokens: m, dim: C)
                }
            }
            var hin = a.hidB  // layer 0's input; layer l writes hiddenOut(l) (hidA, hidB, hidA, …)
            layerNorm(out: rows(hin, C), mean: rows(a.embMean, 1), rstd: rows(a.embRstd, 1), input: rows(a.embSum, C),
                      weight: w + e.lnWeight, bias: w + e.lnBias, rows: m)
            applyDropout(rows(hin, C), site: 0, firstRow: r0, rows: m)
            for l in 0..<L {
                let p = layout.layers[l], s = a.layer(l)
                let hout = a.hiddenOut(l)
                // Self-attention block: qkv = h·Wqkvᵀ + b; ctx = attention; res1 = h + ctx·Woᵀ + bo.
                Linear.forward(y: rows(s.qkv, 3 * C), x: rows(hin, C), weight: w + p.qkvWeight, bias: w + p.qkvBias,
                               rows: m, inDim: C, outDim: 3 * C)
                Attention.forward(ctx: x + a.ctx, qkv: x + s.qkv, spans: spans, dim: C, heads: H, scratch: scratch)
                Linear.forward(y: rows(s.res1, C), x: rows(a.ctx, C), weight: w + p.attnOutWeight, bias: w + p.attnOutBias,
                               rows: m, inDim: C, outDim: C)
                applyDropout(rows(s.res1, C), site: 1 + 2 * l, firstRow: r0, rows: m)
                addInPlace(rows(s.res1, C), rows(hin, C), count: m * C)
                layerNorm(out: rows(a.h1, C), mean: rows(s.ln1Mean, 1), rstd: rows(s.ln1Rstd, 1), input: rows(s.res1, C),
                          weight: w + p.ln1Weight, bias: w + p.ln1Bias, rows: m)
                // Feed-forward block: res2 = h1 + gelu(h1·W1ᵀ + b1)·W2ᵀ + b2.
                Linear.forward(y: rows(s.ffnPre, I), x: rows(a.h1, C), weight: w + p.ffnInWeight, bias: w + p.ffnInBias,
                               rows: m, inDim: C, outDim: I)
                gelu(out: rows(a.ffnAct, I), input: rows(s.ffnPre, I), count: m * I)
                Linear.forward(y: rows(s.res2, C), x: rows(a.ffnAct, I), weight: w + p.ffnOutWeight, bias: w + p.ffnOutBias,
                               rows: m, inDim: I, outDim: C)
                applyDropout(rows(s.res2, C), site: 2 + 2 * l, firstRow: r0, rows: m)
                addInPlace(rows(s.res2, C), rows(a.h1, C), count: m * C)
                layerNorm(out: rows(hout, C), mean: rows(s.ln2Mean, 1), rstd: rows(s.ln2Rstd, 1), input: rows(s.res2, C),
                          weight: w + p.ln2Weight, bias: w + p.ln2Bias, rows: m)
                hin = hout
            }
        }
        if reused == 0 && k > 0 {
            computeRows(of: Array(b.spans[..<k]))
            computeRows(of: Array(b.spans[k...]))
            rowGroups = [0..<prefixTokens, prefixTokens..<n]
        } else {
            computeRows(of: Array(b.spans[reused...]))
            rowGroups = previous.groups.filter { $0.upperBound <= prefixTokens } + [prefixTokens..<n]
        }
        lastHidden = L == 0 ? a.hidB : a.hiddenOut(L - 1)
        pool(from: x + lastHidden, firstSequence: reused)
        return reused
    }

    /// Recomputes the pooled (and normalised) outputs from token states `hidden` (n, C) of the
    /// current batch — by default the last layer's; a caller may pass perturbed states. Sequences
    /// before `firstSequence` keep their outputs.
    public func pool(from hidden: UnsafePointer<Float>, firstSequence k: Int = 0) {
        guard let a = acts, let b = batch else { preconditionFailure("pool before forward") }
        let C = config.hiddenSize, S = b.spans.count
        let x = workspace.base
        Pooling.forward(out: x + a.pooled + k * C, hidden: hidden, spans: Array(b.spans[k...]), dim: C, mode: config.pooling)
        if config.normalize {
            L2Normalize.forward(out: x + a.output + k * C, norms: x + a.norms + k, input: x + a.pooled + k * C,
                                rows: S - k, dim: C)
        } else {
            (x + a.output + k * C).update(from: x + a.pooled + k * C, count: (S - k) * C)
        }
    }

    /// Reads the last layer's token states of the current batch, (n, C), inside `body`.
    /// Valid after `forward` and until the next `forward` or `backward`.
    public func withLastHiddenStates<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        guard acts != nil, let b = batch else { preconditionFailure("no forward pass yet") }
        return try body(UnsafeBufferPointer(start: workspace.base + lastHidden,
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
    /// Only the forward's temporaries (among them the last hidden states) are overwritten, so the
    /// backward may run again on the same forward (gradients then accumulate twice).
    public func backward(dOutput: UnsafePointer<Float>, into grads: FlatBuffer, freezePositions: Bool) {
        guard let a = acts, let b = batch, backwardReady, a.savesAll else {
            preconditionFailure("Encoder.backward needs a forward pass with saveForBackward: true")
        }
        precondition(grads.count == layout.count, "Encoder.backward: gradient buffer does not match the layout")
        let c = config
        let C = c.hiddenSize, I = c.intermediateSize, H = c.numHeads, L = c.numLayers
        let n = b.tokenCount, S = b.spans.count
        let w = parameters.base, g = grads.base, x = workspace.base
        let e = layout.embeddings
        let scratch = UnsafeMutableBufferPointer(start: x + a.attnScratch, count: a.attnScratchCount)
        // The forward temporaries are free now; the backward names them by role.
        let dH = x + a.hidA      // gradient w.r.t. the current layer's output, then its input
        let dA = x + a.hidB      // gradient w.r.t. h1, then w.r.t. ctx
        let dR = x + a.h1        // gradient w.r.t. res2, then res1
        let t1 = x + a.ctx       // recomputed h1, then ctx, then the layer input
        let tI = x + a.ffnAct    // recomputed GELU output, then its gradient and dPre (in place), then dQKV

        // Pooling and normalisation: dOutput → dPooled → dH (n, C).
        let dPooled = x + a.dPooled
        if c.normalize {
            dPooled.update(repeating: 0, count: S * C)
            L2Normalize.backward(dInput: dPooled, dOut: dOutput, out: x + a.output, norms: x + a.norms, rows: S, dim: C)
        } else {
            dPooled.update(from: dOutput, count: S * C)
        }
        fill(dH, 0, count: n * C)
        Pooling.backward(dHidden: dH, dOut: dPooled, spans: b.spans, dim: C, mode: c.pooling)

        for l in stride(from: L - 1, through: 0, by: -1) {
            let p = layout.layers[l], s = a.layer(l)
            // Recompute h1 = LN1(res1) and the GELU output from the saved tensors.
            layerNormApply(out: t1, input: x + s.res1, mean: x + s.ln1Mean, rstd: x + s.ln1Rstd,
                           weight: w + p.ln1Weight, bias: w + p.ln1Bias, rows: n)
            if a.recomputesFeedForward {
                // pre = h1·W1ᵀ + b1 again, over the forward's row groups (the same products).
                for r in rowGroups {
                    Linear.forward(y: x + s.ffnPre + r.lowerBound * I, x: t1 + r.lowerBound * C,
                                   weight: w + p.ffnInWeight, bias: w + p.ffnInBias, rows: r.count, inDim: C, outDim: I)
                }
            }
            gelu(out: tI, input: x + s.ffnPre, count: n * I)
            // LayerNorm 2: dH → dRes2 (dR).
            layerNormBackward(dInput: dR, dWeight: g + p.ln2Weight, dBias: g + p.ln2Bias, dOut: dH,
                              input: x + s.res2, mean: x + s.ln2Mean, rstd: x + s.ln2Rstd, weight: w + p.ln2Weight, rows: n)
            // res2 = h1 + act·W2ᵀ + b2: the residual passes dRes2 to h1 (dA), the product to act —
            // W2's gradient first, while tI still holds act; then dAct overwrites it.
            copy(dA, from: dR, count: n * C)
            applyDropout(dR, site: 2 + 2 * l, firstRow: 0, rows: n)  // the product's output was dropped out
            Linear.backward(dX: nil, dW: g + p.ffnOutWeight, dB: g + p.ffnOutBias, dY: dR,
                            x: tI, weight: w + p.ffnOutWeight, rows: n, inDim: I, outDim: C)
            fill(tI, 0, count: n * I)
            Linear.backward(dX: tI, dW: nil, dB: nil, dY: dR, x: tI, weight: w + p.ffnOutWeight,
                            rows: n, inDim: I, outDim: C)
            // act = gelu(pre): dPre = dAct ⊙ gelu'(pre), in place in tI.
            Parallel.chunks(n * I, minPerChunk: 4096) { r in
                let o = r.lowerBound
                GELU.backward(dInput: tI + o, input: x + s.ffnPre + o, dOut: tI + o, count: r.count)
            }
            // pre = h1·W1ᵀ + b1.
            Linear.backward(dX: dA, dW: g + p.ffnInWeight, dB: g + p.ffnInBias, dY: tI,
                            x: t1, weight: w + p.ffnInWeight, rows: n, inDim: C, outDim: I)
            // LayerNorm 1: dH1 (dA) → dRes1 (dR).
            layerNormBackward(dInput: dR, dWeight: g + p.ln1Weight, dBias: g + p.ln1Bias, dOut: dA,
                              input: x + s.res1, mean: x + s.ln1Mean, rstd: x + s.ln1Rstd, weight: w + p.ln1Weight, rows: n)
            // res1 = hin + ctx·Woᵀ + bo: the residual passes dRes1 to hin (dH), the product to ctx (dA).
            copy(dH, from: dR, count: n * C)
            applyDropout(dR, site: 1 + 2 * l, firstRow: 0, rows: n)
            fill(dA, 0, count: n * C)
            Linear.backward(dX: dA, dW: nil, dB: nil, dY: dR, x: t1, weight: w + p.attnOutWeight,
                            rows: n, inDim: C, outDim: C)
            // Attention backward → dQKV (tI); it also recomputes ctx into t1 for Wo's gradient.
            fill(tI, 0, count: n * 3 * C)
            Attention.backward(dqkv: tI, ctx: t1, dctx: dA, qkv: x + s.qkv, spans: b.spans, dim: C, heads: H,
                               scratch: scratch)
            Linear.backward(dX: nil, dW: g + p.attnOutWeight, dB: g + p.attnOutBias, dY: dR,
                            x: t1, weight: w + p.attnOutWeight, rows: n, inDim: C, outDim: C)
            // Recompute this layer's input (the previous LayerNorm's output) into t1.
            if l == 0 {
                layerNormApply(out: t1, input: x + a.embSum, mean: x + a.embMean, rstd: x + a.embRstd,
                               weight: w + e.lnWeight, bias: w + e.lnBias, rows: n)
                applyDropout(t1, site: 0, firstRow: 0, rows: n)
            } else {
                let q = layout.layers[l - 1], sp = a.layer(l - 1)
                layerNormApply(out: t1, input: x + sp.res2, mean: x + sp.ln2Mean, rstd: x + sp.ln2Rstd,
                               weight: w + q.ln2Weight, bias: w + q.ln2Bias, rows: n)
            }
            Linear.backward(dX: dH, dW: g + p.qkvWeight, dB: g + p.qkvBias, dY: tI,
                            x: t1, weight: w + p.qkvWeight, rows: n, inDim: C, outDim: 3 * C)
        }
        // Embedding dropout and LayerNorm, then the sparse embedding-table gradients.
        applyDropout(dH, site: 0, firstRow: 0, rows: n)
        layerNormBackward(dInput: dA, dWeight: g + e.lnWeight, dBias: g + e.lnBias, dOut: dH,
                          input: x + a.embSum, mean: x + a.embMean, rstd: x + a.embRstd, weight: w + e.lnWeight, rows: n)
        b.ids.withUnsafeBufferPointer { ids in
            b.positions.withUnsafeBufferPointer { pos in
                Embedding.backward(dWte: g + e.word, dWpe: freezePositions ? nil : g + e.position,
                                   dWtt: g + e.tokenType, dOut: dA, ids: ids.baseAddress!,
                                   positions: pos.baseAddress!, tokens: n, dim: C)
            }
        }
    }

    // MARK: - Row- and element-parallel wrappers

    /// LayerNorm forward, rows split among the workers.
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

    /// LayerNorm output recomputed from saved statistics, rows split among the workers.
    private func layerNormApply(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows n: Int) {
        let C = config.hiddenSize
        Parallel.chunks(n, minPerChunk: 16) { r in
            let o = r.lowerBound
            LayerNorm.apply(out: out + o * C, input: input + o * C, mean: mean + o, rstd: rstd + o,
                            weight: weight, bias: bias, rows: r.count, dim: C)
        }
    }

    /// LayerNorm backward: `dInput` is overwritten (zeroed first); the input gradient is split by
    /// rows, γ/β gradients by features.
    private func layerNormBackward(dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                   dBias: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                   input: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, rows n: Int) {
        let C = config.hiddenSize
        fill(dInput, 0, count: n * C)
        Parallel.chunks(n, minPerChunk: 16) { r in
            let o = r.lowerBound
            LayerNorm.backward(dInput: dInput + o * C, dWeight: nil, dBias: nil, dOut: dOut + o * C,
                               input: input + o * C, mean: mean + o, rstd: rstd + o, weight: weight,
                               rows: r.count, dim: C)
        }
        Parallel.chunks(C, minPerChunk: 16) { cols in
            LayerNorm.parameterGradients(dWeight: dWeight, dBias: dBias, dOut: dOut, input: input,
                                         mean: mean, rstd: rstd, rows: n, dim: C, columns: cols)
        }
    }

    /// Draws every site's mask of the current batch (`HiddenDropout`), sites split among the workers.
    private func drawMasks(_ d: HiddenDropout, tokens n: Int) {
        let C = config.hiddenSize, sites = 1 + 2 * config.numLayers
        if dropoutMasks.count < sites * n * C { dropoutMasks = [UInt8](repeating: 0, count: sites * n * C) }
        dropoutMasks.withUnsafeMutableBufferPointer { m in
            let base = m.baseAddress!
            Parallel.chunks(sites) { r in
                for site in r {
                    var rng = d.generator(site: site)
                    Dropout.makeMask(base + site * n * C, count: n * C, p: d.p, rng: &rng)
                }
            }
        }
    }

    /// `y ⊙= mask · 1/(1−p)` over rows firstRow ..< firstRow + rows of site `site`'s mask, when the
    /// current batch has dropout: a dropout's forward, and (the same product) its backward.
    private func applyDropout(_ y: UnsafeMutablePointer<Float>, site: Int, firstRow r0: Int, rows m: Int) {
        guard let d = dropout, let b = batch else { return }
        let C = config.hiddenSize
        dropoutMasks.withUnsafeBufferPointer { masks in
            let mask = masks.baseAddress! + site * b.tokenCount * C + r0 * C
            Parallel.chunks(m * C, minPerChunk: 16384) { r in
                Dropout.forward(out: y + r.lowerBound, input: y + r.lowerBound, mask: mask + r.lowerBound,
                                count: r.count, p: d.p, rescale: true)
            }
        }
    }

    private func gelu(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        Parallel.chunks(count, minPerChunk: 4096) { r in
            GELU.forward(out: out + r.lowerBound, input: input + r.lowerBound, count: r.count)
        }
    }

    private func reserve(tokens n: Int, sequences S: Int, maxLength: Int, saveAll: Bool) -> ActivationLayout {
        if let a = acts, a.tokens >= n, a.sequences >= S, a.maxLength >= maxLength,
           a.savesAll || !saveAll, a.scratchWorkers >= Parallel.workers {
            return a
        }
        // Grow to at least the old capacities, so alternating batch shapes do not reallocate.
        let old = acts
        let a = ActivationLayout(config: config, tokens: max(n, old?.tokens ?? 0),
                                 sequences: max(S, old?.sequences ?? 0),
                                 maxLength: max(maxLength, old?.maxLength ?? 0),
                                 saveAll: saveAll || (old?.savesAll ?? false),
                                 recomputeFeedForward: memory == .recomputeFeedForward)
        workspace = FlatBuffer(count: a.count)
        acts = a
        generation += 1
        return a
    }
}

/// y += x elementwise, split among the workers.
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Parallel.chunks(count, minPerChunk: 16384) { r in
        for i in r { y[i] += x[i] }
    }
}

/// y = x elementwise, split among the workers.
func copy(_ y: UnsafeMutablePointer<Float>, from x: UnsafePointer<Float>, count: Int) {
    Parallel.chunks(count, minPerChunk: 16384) { r in
        (y + r.lowerBound).update(from: x + r.lowerBound, count: r.count)
    }
}

/// y = v elementwise, split among the workers.
func fill(_ y: UnsafeMutablePointer<Float>, _ v: Float, count: Int) {
    Parallel.chunks(count, minPerChunk: 16384) { r in
        (y + r.lowerBound).update(repeating: v, count: r.count)
    }
}
