import Foundation
import TransformerLite

/// Fine-tuning state: a copy of the parameters, AdamW's moments, the step count, and a
/// deterministic batch plan, so that a run stopped after any step and resumed from its saved state
/// ends with the same parameters, bit for bit, as an uninterrupted run (same engine thread count).
///
/// Step t (1-based) uses epoch e = (t − 1) / S and batch k = (t − 1) mod S of that epoch, with
/// S = ⌈N / B⌉: the documents perm_e[kB ..< min((k+1)B, N)] of a permutation seeded by (seed, e)
/// (the last batch of an epoch may be smaller; a batch of one has zero loss and only decays the
/// weights). Each document's query crop is drawn from a generator seeded by (seed, t, slot), so
/// nothing random is carried from one step to the next.
///
/// A step: one `PackedBatch` of 2B sequences (B crops, then their B documents); forward without
/// dropout, or with hidden dropout (`UpdateConfig.dropout`) whose masks are seeded by (seed, t);
/// in-batch InfoNCE;
/// the gradient buffer (the parameters' size) zeroed, then the backward with position embeddings
/// trained; global-norm clipping; AdamW with the linear warm-up/decay rate of step t.
public final class UpdateTrainer {
    public let config: UpdateConfig
    public let layout: ParameterLayout
    /// The parameters being trained (a copy of the retriever's).
    public let parameters: FlatBuffer
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public let totalSteps: Int
    /// Content token ids (no [CLS]/[SEP]) of the usable documents, truncated to maxLength − 2.
    public let contents: [[Int]]
    public let documentCount: Int
    /// The same for the replay documents (known documents mixed into every batch; may be empty).
    public let replayContents: [[Int]]
    /// Batch slots per step taken by replay documents (0 without them), and by new documents.
    public let replaySlots: Int
    public var newPerBatch: Int { config.batchSize - replaySlots }
    /// Fingerprints of the documents and of the starting model (FNV-1a 64, hex; `Retriever.fingerprint`).
    public let corpusFingerprint: String
    public let modelFingerprint: String
    public var step: Int { optimizer.stepCount }
    public private(set) var losses: [Double] = []
    public private(set) var tokens = 0
    public private(set) var seconds = 0.0

    private let encoder: Encoder
    private let grads: FlatBuffer
    /// θ₀, the starting model's parameters (shared with it, never written), when `config.anchor` > 0.
    private let start: FlatBuffer?
    let cls: Int, sep: Int
    private var dEmbeddings: [Float] = []

    /// A fresh update of `retriever` on `documents`, with `replay` documents (known ones, see
    /// `UpdateConfig.replayShare`) mixed into every batch. Throws `.invalidInput` for bad settings
    /// or fewer than two usable documents.
    public convenience init(retriever: Retriever, documents: [String], replay: [String] = [], config: UpdateConfig) throws {
        try self.init(retriever: retriever, documents: documents, replay: replay, config: config, state: nil)
    }

    /// The fingerprint of an update's documents: the new ones, and the replay ones when there are any.
    public static func fingerprint(documents: [String], replay: [String]) -> String {
        replay.isEmpty ? Fingerprint.of(texts: documents) : Fingerprint.of(texts: documents + ["\u{0}replay"] + replay)
    }

    init(retriever: Retriever, documents: [String], replay: [String], config: UpdateConfig, state: SavedState?) throws {
        try config.validate()
        let m = try retriever.validatedMaxLength(config.maxLength)
        let tok = retriever.tokenizer
        func contentIds(_ texts: [String]) -> [[Int]] {
            texts.map { text -> [Int] in
                let ids = tok.encode(text, maxLength: m)
                return ids.count >= 2 ? Array(ids[1 ..< ids.count - 1]) : []
            }.filter { !$0.isEmpty }
        }
        let contents = contentIds(documents)
        guard contents.count >= 2 else {
            throw GradNormIRError.invalidInput("an update needs at least two non-empty documents (got \(contents.count) of \(documents.count))")
        }
        self.replayContents = contentIds(replay)
        if !replay.isEmpty && replayContents.isEmpty {
            throw GradNormIRError.invalidInput("none of the \(replay.count) replay documents has a token")
        }
        if !replayContents.isEmpty && config.replayShare <= 0 {
            throw GradNormIRError.invalidInput("replay documents were given with a replay share of 0")
        }
        let replaySlots = config.replaySlots(available: replayContents.count)
        self.replaySlots = replaySlots
        guard let cls = tok.id(of: "[CLS]"), let sep = tok.id(of: "[SEP]") else {
            throw GradNormIRError.tokenizer(path: retriever.checkpoint.vocabFile, reason: "vocabulary lacks [CLS] or [SEP]")
        }
        self.cls = cls
        self.sep = sep
        self.config = config
        self.layout = retriever.checkpoint.layout
        self.contents = contents
        self.documentCount = documents.count
        let newPerBatch = config.batchSize - replaySlots
        let perEpoch = (contents.count + newPerBatch - 1) / newPerBatch
        self.totalSteps = config.steps ?? config.epochs * perEpoch
        self.schedule = LearningRateSchedule(
            peak: config.learningRate,
            warmupSteps: Int((config.warmupFraction * Double(totalSteps)).rounded(.up)),
            totalSteps: totalSteps)
        self.corpusFingerprint = Self.fingerprint(documents: documents, replay: replay)
        self.modelFingerprint = retriever.fingerprint
        if let s = state {
            self.parameters = s.parameters
            self.optimizer = AdamW(config: config.adamW, m: s.m, v: s.v, stepCount: s.meta.step)
            self.losses = s.meta.losses
            self.tokens = s.meta.tokens
            self.seconds = s.meta.seconds
        } else {
            let p = FlatBuffer(count: layout.count)
            retriever.checkpoint.parameters.withUnsafeBufferPointer { src in
                p.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: src) }
            }
            self.parameters = p
            self.optimizer = AdamW(count: layout.count, config: config.adamW)
        }
        self.encoder = Encoder(layout: layout, parameters: parameters)
        self.grads = FlatBuffer(count: layout.count)
        self.start = config.anchor > 0 ? retriever.checkpoint.parameters : nil
        if config.batching == .neighbours {
            // Neighbours by the starting model (its search embeddings of the truncated documents),
            // so a resumed run plans the same batches.
            let e = retriever.searchEmbeddings(ids: contents.map { [cls] + $0 + [sep] })
            let index = VectorIndex(dimension: layout.config.hiddenSize, vectors: e)
            let depth = min(contents.count - 1, 4 * config.batchSize)  // ≥ 1: there are at least two documents
            neighbourLists = index.search(selfNeighboursOf: Array(contents.indices), k: depth).map { $0.map(\.index) }
        }
    }

    /// Each document's nearest others (by the starting model), nearest first; only for `.neighbours`.
    var neighbourLists: [[Int]] = []
    /// The batches of the epoch planned last: an epoch is planned once, its steps reuse the plan.
    var plannedEpoch: (epoch: Int, batches: [[Int]])?

    public var isFinished: Bool { step >= totalSteps }

    /// Takes the next step and returns its figures. Precondition: not finished.
    @discardableResult
    public func runStep() -> UpdateProgress {
        precondition(!isFinished, "UpdateTrainer.runStep: all steps are done")
        return runStep(sequences: batchSequences(step: step + 1))
    }

    /// Takes the next step on a batch given by the caller instead of the planned one: 2B token-id
    /// sequences with their special tokens, B queries then their B positives (for parity tests
    /// and custom batches; a resumed run replays only planned batches).
    @discardableResult
    public func runStep(sequences: [[Int]]) -> UpdateProgress {
        precondition(sequences.count >= 2 && sequences.count % 2 == 0, "UpdateTrainer.runStep: 2B sequences expected")
        let started = Date()
        let t = step + 1
        let B = sequences.count / 2, C = layout.config.hiddenSize
        let batch = PackedBatch(sequences)
        let dropout = config.dropout > 0
            ? HiddenDropout(p: Float(config.dropout), seed: Seed.mixed(config.seed, Seed.dropoutTag, UInt64(t))) : nil
        encoder.forward(batch, saveForBackward: true, dropout: dropout)
        if dEmbeddings.count < 2 * B * C { dEmbeddings = [Float](repeating: 0, count: 2 * B * C) }
        let loss = encoder.withOutput { out in
            dEmbeddings.withUnsafeMutableBufferPointer { d in
                InfoNCE.inBatch(embeddings: out.baseAddress!, pairs: B, dim: C, temperature: config.temperature,
                                dEmbeddings: d.baseAddress!)
            }
        }
        grads.zero()
        dEmbeddings.withUnsafeBufferPointer { d in
            encoder.backward(dOutput: d.baseAddress!, into: grads, freezePositions: false)
        }
        let norm = GradientClipping.clipGlobalNorm(grads, maxNorm: config.maxGradNorm)
        let lr = schedule.rate(step: t)
        optimizer.step(parameters: parameters, gradients: grads, learningRate: lr)
        if let start { AdamW.pull(parameters, toward: start, rate: lr * config.anchor) }
        losses.append(loss)
        tokens += batch.tokenCount
        seconds += Date().timeIntervalSince(started)
        return UpdateProgress(step: t, totalSteps: totalSteps, loss: loss, gradNorm: norm, learningRate: lr,
                              documents: B, tokens: batch.tokenCount)
    }

    public func summary() -> UpdateSummary {
        let s = losses.count
        let w = max(1, min(20, (s + 9) / 10))
        func mean(_ a: ArraySlice<Double>) -> Double { a.isEmpty ? .nan : a.reduce(0, +) / Double(a.count) }
        return UpdateSummary(
            steps: s, totalSteps: totalSteps, documents: documentCount, usedDocuments: contents.count,
            replayDocuments: replayContents.isEmpty ? nil : replayContents.count,
            epochs: Double(s * newPerBatch) / Double(contents.count),
            meanLossFirst: mean(losses.prefix(w)), meanLossLast: mean(losses.suffix(w)), lossWindow: w,
            losses: losses, seconds: seconds, tokens: tokens,
            tokensPerSecond: seconds > 0 ? Double(tokens) / seconds : 0, config: config,
            threads: BLAS.engineThreads, corpusFingerprint: corpusFingerprint, modelFingerprint: modelFingerprint)
    }

    /// A retriever over the trained parameters (shared, not copied: do not step the trainer while
    /// using it), with the base retriever's tokenizer and settings.
    public func retriever(base: Retriever) throws -> Retriever {
        try Retriever(checkpoint: base.checkpoint.replacingParameters(parameters), tokenizer: base.tokenizer)
    }
}

/// The unsupervised update as one call.
public enum UnsupervisedUpdate {
    /// Fine-tunes a copy of the retriever's parameters on `documents` (texts); the given retriever
    /// is untouched. Returns a retriever over the new parameters (same tokenizer and settings) and
    /// what the update did. `progress` is called after every step.
    public static func run(retriever: Retriever, documents: [String], replay: [String] = [], config: UpdateConfig,
                           progress: ((UpdateProgress) -> Void)? = nil) throws -> (Retriever, UpdateSummary) {
        let trainer = try UpdateTrainer(retriever: retriever, documents: documents, replay: replay, config: config)
        while !trainer.isFinished {
            let p = trainer.runStep()
            progress?(p)
        }
        return (try trainer.retriever(base: retriever), trainer.summary())
    }
}
