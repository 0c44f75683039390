import Foundation
import TransformerLite

/// Settings of an unsupervised update (METHOD.md §"Update strategies"): fine-tuning the retriever
/// on new documents without labels, with a contrastive task — the query is a random contiguous crop
/// of 10–50% of a document's tokens, the positive is the rest of the document (the inverse cloze
/// task, the default) or the whole document (the authors' task), the other documents of the batch
/// are the negatives, InfoNCE with cosine similarity and τ = 0.05.
public struct UpdateConfig: Codable, Sendable, Equatable {
    /// Optimizer steps; nil = `epochs` × ⌈documents / batchSize⌉.
    public var steps: Int?
    /// Passes over the documents. The defaults (2 epochs at 2e-5, neighbour batches) are the best
    /// of the settings compared on the dev halves of the queries of two shifted corpora, French
    /// and Japanese package descriptions (scripts/update_study.py; README, `update`); 4 epochs
    /// gained 0.4 point more on average, within the dev halves' noise, at twice the cost.
    public var epochs: Int = 2
    /// Documents per step (B crops and B documents are encoded together, 2B sequences). The
    /// default, 64, beat 16 and 32 on the dev halves of the study's third round (mean gain over
    /// French and Japanese +17.6 points against +16.5 and +17.1, at the same epochs: the same
    /// tokens in a quarter of the steps; more in-batch negatives). On the test halves, run only
    /// after that choice, it gained more than 16 on six of eight corpora (Danish 0.3 point less,
    /// Ukrainian the same). On
    /// paraphrase-MiniLM-L3-v2 (not tuned on it) it gained a third less than 16 on the strong
    /// shifts (Japanese, Russian, Ukrainian) and more on the mild ones. Peak memory with
    /// all-MiniLM-L6-v2 at 256 tokens: 2.2 GB, against 1.2 GB at 16 (README, `update`).
    public var batchSize: Int = 64
    /// Peak learning rate of the linear warm-up/decay schedule. 2e-5 beat 1e-4 on both dev halves of
    /// the study above (French +4.7 against +1.1 points of recall@10, Japanese +23.2 against
    /// +21.6), as it had beaten 5e-5 and 1e-4 on the jargon dictionary (README, `update`).
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
    /// How the documents of an epoch are grouped into batches. The default, `.neighbours` (hard
    /// in-batch negatives), beat the authors' shuffle (`.random`) on both dev halves of the study
    /// (French +6.2 against +4.7 points, Japanese +25.6 against +23.1) at the same step count.
    public var batching: UpdateBatching = .neighbours
    /// What a query crop is paired with. The default, `.rest` (the document with the crop cut out),
    /// beat the authors' `.document` on both dev halves of the study's second round (French +7.3
    /// against +6.2 points, Japanese +25.8 against +25.6, both with neighbour batches; it lost 7
    /// French dev queries instead of 27). Where updating does not help — a dictionary queried by
    /// headwords — it harmed more in batches of 16: on the dev half of the 2,219-entry jargon,
    /// −20.5 points against −7.1 for `.document`; in batches of 64 (the default) −7.6 (README,
    /// `update`).
    public var positive: UpdatePositive = .rest
    /// With replay documents (documents the model already serves, mixed into the update so that it
    /// does not forget them: a replay buffer), the share of each batch's slots they fill —
    /// round(share × batchSize) slots, at least one; the new documents fill the rest. Ignored when
    /// the update is given no replay documents.
    public var replayShare: Double = 0.25
    /// Pull toward the starting weights (a decoupled L2-SP regulariser): after each AdamW step,
    /// θ ← θ − lr_t · anchor · (θ − θ₀), with lr_t the step's learning rate. 0 (the default) is the
    /// plain update; with lr 2e-5, an anchor of 1,000 takes 2% of the way back per step at the peak.
    /// On paraphrase-MiniLM-L3-v2, which lost French recall to updates with the authors' task, 5,000
    /// (chosen on a dev half) removed the loss and halved the gain on the updated corpus; with the
    /// inverse-cloze default no significant loss was measured on either checkpoint (README, `update`).
    public var anchor: Double = 0
    /// Training-mode hidden dropout p (BERT's dropout on the embeddings' output and on the
    /// attention and feed-forward outputs; `HiddenDropout`), with fresh masks at every step
    /// seeded by the seed and the step. 0 (the default) encodes as in eval mode: no dropout.
    public var dropout: Double = 0
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
        batching = .random  // what runs saved before batching was a setting used
        positive = .document  // and before the positive was
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        try get(.epochs, &epochs); try get(.batchSize, &batchSize); try get(.learningRate, &learningRate)
        try get(.warmupFraction, &warmupFraction); try get(.weightDecay, &weightDecay)
        try get(.maxGradNorm, &maxGradNorm); try get(.temperature, &temperature)
        try get(.cropMin, &cropMin); try get(.cropMax, &cropMax); try get(.maxLength, &maxLength)
        try get(.seed, &seed); try get(.batching, &batching); try get(.positive, &positive)
        try get(.replayShare, &replayShare); try get(.anchor, &anchor); try get(.dropout, &dropout)
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
        guard replayShare.isFinite, replayShare >= 0, replayShare <= 1, replaySlots(available: batchSize) < batchSize else {
            throw fail("replay share must leave at least one slot of each batch to the new documents (got \(replayShare) of \(batchSize))")
        }
        guard anchor.isFinite, anchor >= 0, learningRate * anchor < 1 else {
            throw fail("anchor must be ≥ 0 with learning rate × anchor < 1 (got \(anchor))")
        }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw fail("dropout must be in [0, 1) (got \(dropout))") }
        guard maxLength >= 3 else { throw fail("max length must be at least 3 ([CLS], one token, [SEP]) (got \(maxLength))") }
        guard beta1.isFinite, beta2.isFinite, (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw fail("AdamW betas must be in [0, 1)")
        }
        guard epsilon.isFinite, epsilon > 0 else { throw fail("AdamW epsilon must be positive") }
    }

    /// Replay slots of each batch when `available` replay documents are given: round(share ×
    /// batch), at least one, at most `available`; none without replay documents.
    public func replaySlots(available: Int) -> Int {
        available == 0 ? 0 : min(available, max(1, Int((replayShare * Double(batchSize)).rounded())))
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
    /// Usable replay documents mixed into the batches (nil: none; summaries written before replay).
    public var replayDocuments: Int?
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
    /// Fingerprints (FNV-1a 64) of the documents and of the starting model (`Retriever.fingerprint`).
    public var corpusFingerprint: String?
    public var modelFingerprint: String?
}
