import Foundation
import TransformerLite

/// The detectors `Predictor` runs. Each gives every document an `ood_score` on one scale for
/// every corpus (no per-corpus normalisation): higher = more likely to be missed by the retriever.
public enum DetectorKind: String, CaseIterable, Sendable, Codable {
    /// `FailureModel.default`: the predicted probability that recall@10 < 1, from the query-free
    /// signals (a thousand documents a second once the corpus is embedded).
    case combined
    /// The paper's score: the mean record gradient norm (`GradNormScorer`; seconds per document).
    case gradnormir
    /// `DocumentSignals.density`.
    case density
    /// `DocumentSignals.nearest`.
    case nearest
    /// `DocumentSignals.piecesPerWord`.
    case tokens
    /// The embedding baselines, fitted on an in-distribution reference.
    case knn, mahalanobis, ipq

    /// The detector users get when they name none: the best measured on held-out corpora
    /// (scripts/detector_study.py; docs/detector-study.md). GradNormIR's corpus-level OOD ratio
    /// follows recall far better than the query-free signals; per document every detector
    /// measured is alike (AUROC about 0.6).
    public static let `default` = DetectorKind.gradnormir

    /// Whether the detector needs an in-distribution reference.
    public var needsReference: Bool { [.knn, .mahalanobis, .ipq].contains(self) }
}

/// One document's prediction: `{"_id", "ood_score", "detector", the signals…[, "gradnorm",
/// "loss", "records"][, "reason"]}`.
public struct Prediction: Sendable, Equatable, Encodable {
    public let id: String
    /// nil when the detector cannot score the document (`reason` says why).
    public let oodScore: Double?
    public let detector: DetectorKind
    public let signals: DocumentSignals
    /// The GradNormIR score (detector `gradnormir` only).
    public var score: DocumentScore?

    public init(id: String, oodScore: Double?, detector: DetectorKind, signals: DocumentSignals,
                score: DocumentScore? = nil) {
        self.id = id
        self.oodScore = oodScore
        self.detector = detector
        self.signals = signals
        self.score = score
    }

    enum CodingKeys: String, CodingKey {
        case id = "_id", oodScore = "ood_score", detector, gradNorm = "gradnorm", loss, records, reason
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(oodScore, forKey: .oodScore)
        try c.encode(detector, forKey: .detector)
        try signals.encode(to: encoder)
        if let score {
            try c.encode(score.gradNorm, forKey: .gradNorm)
            try c.encode(score.meanLoss, forKey: .loss)
            try c.encode(score.records, forKey: .records)
            try c.encodeIfPresent(score.reason, forKey: .reason)
        }
    }

    /// The JSON line written for it (the house one-line style).
    public var jsonLine: String {
        do { return try JSONLineEncoder().encode(self) } catch {
            preconditionFailure("Prediction: \(error)")  // numbers and strings always encode
        }
    }
}

/// Runs one detector over documents of a corpus. The corpus's search embeddings are computed (or
/// read from a persisted index) by the caller; `gradnormir` builds the GradNormIR corpus index
/// over them with `config`.
public final class Predictor {
    public let detector: DetectorKind
    let documents: [Document]
    let extractor: SignalExtractor
    let embeddings: [[Float]]
    let baseline: (any OODDetector)?
    let scorer: GradNormScorer?
    let model: FailureModel

    /// - Parameters:
    ///   - embeddings: the search embeddings of every document, in corpus order.
    ///   - config: the scoring settings (its `maxLength` is the embeddings'); used by `gradnormir`.
    ///   - reference: in-distribution search embeddings, required by `knn`, `mahalanobis`, `ipq`.
    ///   - seed: the IPQ k-means seed.
    public init(detector: DetectorKind, retriever: Retriever, documents: [Document], embeddings: [[Float]],
                config: ScoringConfig, reference: [[Float]]? = nil, seed: UInt64 = 0,
                model: FailureModel = .default) throws {
        self.detector = detector
        self.documents = documents
        self.embeddings = embeddings
        self.model = model
        if detector.needsReference {
            guard let reference else {
                throw GradNormIRError.invalidSetting(name: "reference", reason: "the \(detector.rawValue) detector needs an in-distribution reference")
            }
            switch detector {
            case .knn: baseline = try KNNDistance(reference: reference)
            case .mahalanobis: baseline = try Mahalanobis(reference: reference)
            default: baseline = try IPQ(reference: reference, seed: seed)
            }
        } else {
            baseline = nil
        }
        if detector == .gradnormir {
            guard config.positives + config.negatives < documents.count else {
                throw GradNormIRError.invalidInput(
                    "\(config.positives) positives and \(config.negatives) negatives need more than "
                    + "\(config.positives + config.negatives) documents; the corpus has \(documents.count)")
            }
            let index = try CorpusIndex(documents: documents.map(\.fullText), embeddings: embeddings,
                                        retriever: retriever, config: config)
            scorer = GradNormScorer(retriever: retriever, corpus: index)
            // The signals search the same vectors: one index, not two copies.
            extractor = try SignalExtractor(texts: documents.map(\.fullText), index: index.index, tokenizer: retriever.tokenizer)
        } else {
            scorer = nil
            extractor = try SignalExtractor(texts: documents.map(\.fullText), embeddings: embeddings,
                                            tokenizer: retriever.tokenizer)
        }
    }

    /// Documents whose query-free signals and baseline scores are computed together: a fixed
    /// block of the corpus (documents 64·b ..< 64·(b+1)) whatever is asked, because some BLAS
    /// kernels round a row of a product by the rows beside it. So a document's prediction is the
    /// same bits in any selection, shard, batch or resumed run.
    public static let block = 64

    /// Predictions for the documents at `positions`, in that order. Cheap detectors take many
    /// positions at once; `gradnormir` costs seconds per document.
    public func predict(_ positions: [Int]) throws -> [Prediction] {
        var signals: [Int: DocumentSignals] = [:], baselineScores: [Int: Double] = [:]
        for b in Set(positions.map { $0 / Self.block }).sorted() {
            let rows = Array((b * Self.block)..<min(documents.count, (b + 1) * Self.block))
            for (r, s) in zip(rows, extractor.signals(of: rows)) { signals[r] = s }
            if let baseline {
                for (r, v) in zip(rows, try baseline.scores(rows.map { embeddings[$0] })) { baselineScores[r] = v }
            }
        }
        // GradNormIR scores side by side, one document per worker (the bits of `score`).
        let graded = detector == .gradnormir ? scorer!.score(documents: positions.map { ($0, documents[$0].id) }) : []
        return positions.enumerated().map { k, d in
            let s = signals[d]!
            var p = Prediction(id: documents[d].id, oodScore: nil, detector: detector, signals: s)
            switch detector {
            case .combined: p = Prediction(id: p.id, oodScore: model.probability(s), detector: detector, signals: s)
            case .density: p = Prediction(id: p.id, oodScore: s.density, detector: detector, signals: s)
            case .nearest: p = Prediction(id: p.id, oodScore: s.nearest, detector: detector, signals: s)
            case .tokens: p = Prediction(id: p.id, oodScore: s.piecesPerWord, detector: detector, signals: s)
            case .knn, .mahalanobis, .ipq:
                p = Prediction(id: p.id, oodScore: baselineScores[d], detector: detector, signals: s)
            case .gradnormir:
                let score = graded[k]
                p = Prediction(id: p.id, oodScore: score.gradNorm, detector: detector, signals: s, score: score)
            }
            return p
        }
    }
}
