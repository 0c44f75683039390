import Foundation
import TransformerLite

/// Settings of an unsupervised update (METHOD.md §"Update strategies"): fine-tuning the retriever
/// on new documents without labels, with the authors' contrastive task — the query is a random
/// contiguous crop of 10–50% of a document's tokens, the positive is the whole document, the other
/// documents of the batch are the negatives, InfoNCE with cosine similarity and τ = 0.05.
public struct UpdateConfig: Codable, Sendable, Equatable {
    /// Optimizer steps; nil = `epochs` × ⌈documents / batchSize⌉.
    public var steps: Int?
    public var epochs: Int = 1
    /// Documents per step (B crops and B documents are encoded together, 2B sequences).
    public var batchSize: Int = 16
    /// Peak learning rate of the linear warm-up/decay schedule. The default, 2e-5, is the best of
    /// 2e-5, 5e-5 and 1e-4 by recall@10 after a 2-epoch update on the jargon corpus (0.65 before;
    /// 0.67, 0.647, 0.61 after): larger rates lowered recall (README, `update`).
    public var learningRate: Double = 2e-5
    /// Share of the steps spent warming up linearly from 0 (⌈fraction × steps⌉ steps).
    public var warmupFraction: Double = 0.1
    /// AdamW's decoupled weight decay, applied to every parameter (one parameter group, as
    /// `torch.optim.AdamW(model.parameters())`).
    public var weightDecay: Double = 0.01
    /// Global gradient-norm clipping (`clip_grad_norm_`), before each step.
    public var maxGradNorm: Double = 1.0
    public var temperature: Double = 0.05
    /// The query is a contiguous crop of a share r ∈ [cropMin, cropMax] of the document's
    /// content tokens (uniform r; at least one token).
    public var cropMin: Double = 0.1
    public var cropMax: Double = 0.5
    /// Documents are truncated to this many tokens, [CLS] and [SEP] included.
    public var maxLength: Int = 256
    /// Seed of the shuffles and crops.
    public var seed: UInt64 = 0
    /// How the documents of an epoch are grouped into batches (`.random`: the authors' shuffle).
    public var batching: UpdateBatching = .random
    /// What a query crop is paired with (`.document`: the whole document, the authors' task).
    public var positive: UpdatePositive = .document
    /// AdamW's β₁, β₂ and ε (PyTorch's defaults).
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8

    public init() {}

    /// Decodes saved settings; keys missing from the JSON (settings added after it was written)
    /// take their defaults, which is what the run that wrote it used.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        self.init()
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        try get(.epochs, &epochs); try get(.batchSize, &batchSize); try get(.learningRate, &learningRate)
        try get(.warmupFraction, &warmupFraction); try get(.weightDecay, &weightDecay)
        try get(.maxGradNorm, &maxGradNorm); try get(.temperature, &temperature)
        try get(.cropMin, &cropMin); try get(.cropMax, &cropMax); try get(.maxLength, &maxLength)
        try get(.seed, &seed); try get(.batching, &batching); try get(.positive, &positive)
        try get(.beta1, &beta1); try get(.beta2, &beta2); try get(.epsilon, &epsilon)
    }

    /// Throws `.invalidInput` naming the first setting that cannot be used.
    public func validate() throws {
        func fail(_ s: String) -> GradNormIRError { .invalidInput(s) }
        if let s = steps, s < 1 { throw fail("steps must be at least 1 (got \(s))") }
        guard epochs >= 1 else { throw fail("epochs must be at least 1 (got \(epochs))") }
        guard batchSize >= 2 else { throw fail("batch size must be at least 2: in-batch negatives need two documents (got \(batchSize))") }
        guard learningRate.isFinite, learningRate > 0 else { throw fail("learning rate must be a positive number (got \(learningRate))") }
        guard warmupFraction.isFinite, (0...1).contains(warmupFraction) else { throw fail("warm-up fraction must be in [0, 1] (got \(warmupFraction))") }
        guard weightDecay.isFinite, weightDecay >= 0, learningRate * weightDecay < 1 else {
            throw fail("weight decay must be ≥ 0 with learning rate × weight decay < 1 (got \(weightDecay))")
        }
        guard maxGradNorm.isFinite, maxGradNorm > 0 else { throw fail("max gradient norm must be a positive number (got \(maxGradNorm))") }
        guard temperature.isFinite, temperature > 0 else { throw fail("temperature must be a positive number (got \(temperature))") }
        guard cropMin.isFinite, cropMax.isFinite, cropMin > 0, cropMin <= cropMax, cropMax <= 1 else {
            throw fail("crop shares must satisfy 0 < min ≤ max ≤ 1 (got \(cropMin)…\(cropMax))")
        }
        guard maxLength >= 3 else { throw fail("max length must be at least 3 ([CLS], one token, [SEP]) (got \(maxLength))") }
        guard beta1.isFinite, beta2.isFinite, (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw fail("AdamW betas must be in [0, 1)")
        }
        guard epsilon.isFinite, epsilon > 0 else { throw fail("AdamW epsilon must be positive") }
    }

    var adamW: AdamWConfig {
        AdamWConfig(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
    }
}

/// How an epoch's documents are grouped into batches, i.e. which documents serve as each other's
/// in-batch negatives.
public enum UpdateBatching: String, Codable, Sendable, CaseIterable {
    /// A seeded shuffle cut into consecutive batches (the authors' recipe).
    case random
    /// Batches of near neighbours: taking the documents in a seeded order, each one not yet
    /// placed starts a batch and brings its nearest unplaced neighbours (cosine of the starting
    /// model's search embeddings, among its 4B nearest; shuffled unplaced documents fill up when
    /// those run out). The crop must then pick its document out of similar ones: hard in-batch
    /// negatives at no extra encoding cost. The batches are then taken in a seeded order.
    case neighbours
}

/// The positive a query crop is trained to find.
public enum UpdatePositive: String, Codable, Sendable, CaseIterable {
    /// The whole document, crop included (the authors' task).
    case document
    /// The document with the crop cut out — the inverse cloze task (Lee et al., 2019): the query's
    /// own tokens are absent from its positive, so matching rare strings the two share (dates,
    /// numbers, addresses) cannot solve the task; what the crop says about the rest of the text
    /// must. A crop of the whole document keeps the whole document as its positive.
    case rest
}

/// One finished step, as reported to the progress callback.
public struct UpdateProgress: Sendable {
    /// 1-based step just taken, of `totalSteps`.
    public let step: Int
    public let totalSteps: Int
    /// The in-batch InfoNCE loss of the step (before the parameter update).
    public let loss: Double
    /// Global gradient norm before clipping.
    public let gradNorm: Double
    /// Learning rate used by the step.
    public let learningRate: Double
    /// Documents in the step's batch, and tokens encoded (crops and documents).
    public let documents: Int
    public let tokens: Int
}

/// What an update did (written as `<out>/update.json` by the command line).
public struct UpdateSummary: Codable, Sendable {
    public var steps: Int
    public var totalSteps: Int
    /// Documents given, and those used (non-empty after tokenisation).
    public var documents: Int
    public var usedDocuments: Int
    /// Passes over the documents that the steps amount to (steps × batch / documents).
    public var epochs: Double
    /// Mean loss of the first and of the last `lossWindow` steps (window = ⌈steps / 10⌉, at most 20).
    public var meanLossFirst: Double
    public var meanLossLast: Double
    public var lossWindow: Int
    /// The loss of every step, in order.
    public var losses: [Double]
    /// Wall-clock seconds spent in steps (summed over resumed runs), tokens encoded, and their rate.
    public var seconds: Double
    public var tokens: Int
    public var tokensPerSecond: Double
    public var config: UpdateConfig
    /// Engine threads of the (last) run.
    public var threads: Int
    /// Fingerprints (FNV-1a 64) of the documents and of the starting parameters.
    public var corpusFingerprint: String?
    public var modelFingerprint: String?
}

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
/// dropout (the engine has no training-mode dropout: an update is deterministic); in-batch InfoNCE;
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
    /// Fingerprints of the documents and of the starting parameters (FNV-1a 64, hex).
    public let corpusFingerprint: String
    public let modelFingerprint: String
    public var step: Int { optimizer.stepCount }
    public private(set) var losses: [Double] = []
    public private(set) var tokens = 0
    public private(set) var seconds = 0.0

    private let encoder: Encoder
    private let grads: FlatBuffer
    private let cls: Int, sep: Int
    private var dEmbeddings: [Float] = []

    /// A fresh update of `retriever` on `documents`. Throws `.invalidInput` for bad settings or
    /// fewer than two usable documents.
    public convenience init(retriever: Retriever, documents: [String], config: UpdateConfig) throws {
        try self.init(retriever: retriever, documents: documents, config: config, state: nil)
    }

    private init(retriever: Retriever, documents: [String], config: UpdateConfig, state: SavedState?) throws {
        try config.validate()
        let m = try retriever.validatedMaxLength(config.maxLength)
        let tok = retriever.tokenizer
        let contents = documents.map { text -> [Int] in
            let ids = tok.encode(text, maxLength: m)
            return ids.count >= 2 ? Array(ids[1 ..< ids.count - 1]) : []
        }.filter { !$0.isEmpty }
        guard contents.count >= 2 else {
            throw GradNormIRError.invalidInput("an update needs at least two non-empty documents (got \(contents.count) of \(documents.count))")
        }
        guard let cls = tok.id(of: "[CLS]"), let sep = tok.id(of: "[SEP]") else {
            throw GradNormIRError.tokenizer(path: retriever.checkpoint.vocabFile, reason: "vocabulary lacks [CLS] or [SEP]")
        }
        self.cls = cls
        self.sep = sep
        self.config = config
        self.layout = retriever.checkpoint.layout
        self.contents = contents
        self.documentCount = documents.count
        let perEpoch = (contents.count + config.batchSize - 1) / config.batchSize
        self.totalSteps = config.steps ?? config.epochs * perEpoch
        self.schedule = LearningRateSchedule(
            peak: config.learningRate,
            warmupSteps: Int((config.warmupFraction * Double(totalSteps)).rounded(.up)),
            totalSteps: totalSteps)
        self.corpusFingerprint = Self.fingerprint(texts: documents)
        self.modelFingerprint = Self.fingerprint(retriever.checkpoint.parameters)
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
    private var neighbourLists: [[Int]] = []
    /// The batches of the epoch planned last: an epoch is planned once, its steps reuse the plan.
    private var plannedEpoch: (epoch: Int, batches: [[Int]])?

    public var isFinished: Bool { step >= totalSteps }

    /// Indices into `contents` of the documents of step t (1-based).
    public func batchDocuments(step t: Int) -> [Int] {
        let n = contents.count, b = config.batchSize
        let perEpoch = (n + b - 1) / b
        let epoch = (t - 1) / perEpoch, k = (t - 1) % perEpoch
        if plannedEpoch?.epoch != epoch {
            var rng = SplitMix64(seed: mix(config.seed, 0x5348_5546_464C_4521, UInt64(epoch)))
            var perm = Array(0..<n)
            seededShuffle(&perm, rng: &rng)
            var batches: [[Int]]
            switch config.batching {
            case .random:
                batches = stride(from: 0, to: n, by: b).map { Array(perm[$0 ..< min($0 + b, n)]) }
            case .neighbours:
                batches = Self.neighbourBatches(order: perm, neighbours: neighbourLists, batchSize: b)
                seededShuffle(&batches, rng: &rng)
            }
            plannedEpoch = (epoch, batches)
        }
        return plannedEpoch!.batches[k]
    }

    /// Greedy neighbour batches (see `UpdateBatching.neighbours`): every document exactly once,
    /// ⌈n / b⌉ batches, all of size b but the last one formed.
    public static func neighbourBatches(order: [Int], neighbours: [[Int]], batchSize b: Int) -> [[Int]] {
        var placed = [Bool](repeating: false, count: order.count)
        var batches: [[Int]] = []
        var fill = 0  // next position of `order` to fill up from
        for start in order where !placed[start] {
            var batch = [start]
            placed[start] = true
            for d in neighbours[start] where batch.count < b && !placed[d] {
                batch.append(d)
                placed[d] = true
            }
            while batch.count < b && fill < order.count {
                let d = order[fill]
                fill += 1
                if !placed[d] { batch.append(d); placed[d] = true }
            }
            batches.append(batch)
        }
        return batches
    }

    /// The 2B sequences of step t: B queries ([CLS] crop [SEP]), then the B documents.
    public func batchSequences(step t: Int) -> [[Int]] {
        let docs = batchDocuments(step: t)
        var queries: [[Int]] = [], full: [[Int]] = []
        for (slot, d) in docs.enumerated() {
            let c = contents[d]
            var rng = SplitMix64(seed: mix(config.seed, UInt64(t), UInt64(slot)))
            let r = config.cropMin + (config.cropMax - config.cropMin) * rng.nextUnitDouble()
            let length = min(c.count, max(1, Int(Double(c.count) * r)))
            let start = Int(rng.next() % UInt64(c.count - length + 1))
            queries.append([cls] + c[start ..< start + length] + [sep])
            if config.positive == .rest && length < c.count {
                full.append([cls] + c[..<start] + c[(start + length)...] + [sep])
            } else {
                full.append([cls] + c + [sep])
            }
        }
        return queries + full
    }

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
        encoder.forward(batch, saveForBackward: true)
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
            epochs: Double(s * config.batchSize) / Double(contents.count),
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

    // MARK: Saved state

    /// The JSON part of a saved state.
    struct StateMeta: Codable {
        var format = 1
        var step: Int
        var totalSteps: Int
        var config: UpdateConfig
        var corpusFingerprint: String
        var documents: Int
        var modelFingerprint: String
        var parameterCount: Int
        var losses: [Double]
        var tokens: Int
        var seconds: Double
    }

    struct SavedState {
        let meta: StateMeta
        let parameters: FlatBuffer
        let m: FlatBuffer
        let v: FlatBuffer
    }

    static let stateFileName = "state.safetensors"

    /// Saves parameters, moments, step, settings and fingerprints to `folder/state.safetensors`
    /// (one file: written to a temporary name, fsynced, renamed into place — a kill at any moment
    /// leaves the previous state or the new one, never a mix).
    public func saveState(folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let meta = StateMeta(step: step, totalSteps: totalSteps, config: config, corpusFingerprint: corpusFingerprint,
                             documents: documentCount, modelFingerprint: modelFingerprint,
                             parameterCount: layout.count, losses: losses, tokens: tokens, seconds: seconds)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = String(decoding: try enc.encode(meta), as: UTF8.self)
        let n = layout.count
        try SafeTensorsFile.writeStreaming(
            tensors: [StreamedTensor(name: "parameters", shape: [n], source: .buffer(parameters, 0..<n)),
                      StreamedTensor(name: "adamw.m", shape: [n], source: .buffer(optimizer.m, 0..<n)),
                      StreamedTensor(name: "adamw.v", shape: [n], source: .buffer(optimizer.v, 0..<n))],
            metadata: ["gradnormir.update": json],
            to: URL(fileURLWithPath: folder).appendingPathComponent(Self.stateFileName).path)
    }

    /// Resumes from the state saved in `folder`, or returns nil when there is none. Throws
    /// `.invalidInput` when the saved run had other settings, other documents or another model,
    /// and `.checkpoint` when the state file is damaged.
    public static func resume(folder: String, retriever: Retriever, documents: [String],
                              config: UpdateConfig) throws -> UpdateTrainer? {
        let path = URL(fileURLWithPath: folder).appendingPathComponent(stateFileName).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try SafeTensorsFile(path: path)
        guard let json = file.metadata["gradnormir.update"],
              let meta = try? JSONDecoder().decode(StateMeta.self, from: Data(json.utf8)), meta.format == 1 else {
            throw GradNormIRError.checkpoint(path: path, tensor: nil, reason: "not a gradnormir update state (unreadable metadata)")
        }
        func refuse(_ what: String) -> GradNormIRError {
            .invalidInput("\(path): the saved update was run with \(what); rerun with the same settings to resume, or start over (--restart)")
        }
        guard meta.config == config else {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            let saved = String(decoding: (try? enc.encode(meta.config)) ?? Data(), as: UTF8.self)
            throw refuse("other settings \(saved)")
        }
        guard meta.corpusFingerprint == fingerprint(texts: documents), meta.documents == documents.count else {
            throw refuse("other documents (\(meta.documents) documents, fingerprint \(meta.corpusFingerprint))")
        }
        guard meta.modelFingerprint == fingerprint(retriever.checkpoint.parameters),
              meta.parameterCount == retriever.checkpoint.layout.count else {
            throw refuse("another model (parameter fingerprint \(meta.modelFingerprint))")
        }
        let n = meta.parameterCount
        func load(_ name: String) throws -> FlatBuffer {
            guard let info = file.info(name), info.dtype == .F32, info.count == n else {
                throw GradNormIRError.checkpoint(path: path, tensor: name, reason: "missing or not \(n) F32 values")
            }
            let b = FlatBuffer(count: n)
            try b.withUnsafeMutableBufferPointer { try file.copyFloats(name, into: $0) }
            return b
        }
        let state = SavedState(meta: meta, parameters: try load("parameters"), m: try load("adamw.m"), v: try load("adamw.v"))
        let trainer = try UpdateTrainer(retriever: retriever, documents: documents, config: config, state: state)
        guard trainer.totalSteps == meta.totalSteps, meta.step <= meta.totalSteps, meta.losses.count == meta.step else {
            throw GradNormIRError.checkpoint(path: path, tensor: nil, reason: "inconsistent step counts in the saved state")
        }
        return trainer
    }

    // MARK: Fingerprints

    static func fingerprint(texts: [String]) -> String {
        var h = FNV1a64()
        for t in texts {
            h.add(bytes: t.utf8)
            h.add(0xFF)  // separator (0xFF never occurs in UTF-8)
        }
        return h.hex
    }

    static func fingerprint(_ p: FlatBuffer) -> String {
        var h = FNV1a64()
        p.withUnsafeBufferPointer { b in h.add(bytes: b.lazy.map(\.bitPattern)) }
        return h.hex
    }
}

/// Mixes three words into one seed (SplitMix64 finaliser over a running combination).
private func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var g = SplitMix64(seed: a)
    let x = g.next() ^ b
    var g2 = SplitMix64(seed: x)
    let y = g2.next() ^ c
    var g3 = SplitMix64(seed: y)
    return g3.next()
}

/// The unsupervised update as one call.
public enum UnsupervisedUpdate {
    /// Fine-tunes a copy of the retriever's parameters on `documents` (texts); the given retriever
    /// is untouched. Returns a retriever over the new parameters (same tokenizer and settings) and
    /// what the update did. `progress` is called after every step.
    public static func run(retriever: Retriever, documents: [String], config: UpdateConfig,
                           progress: ((UpdateProgress) -> Void)? = nil) throws -> (Retriever, UpdateSummary) {
        let trainer = try UpdateTrainer(retriever: retriever, documents: documents, config: config)
        while !trainer.isFinished {
            let p = trainer.runStep()
            progress?(p)
        }
        return (try trainer.retriever(base: retriever), trainer.summary())
    }
}
