import Foundation

/// A logistic model of retrieval failure (recall@10 < 1) on `DocumentSignals`:
/// P = σ(intercept + Σ weightᵢ · (featureᵢ − meanᵢ) / scaleᵢ). Its coefficients are fitted on
/// training corpora only (`scripts/detector_study.py`) and fixed here, so the probability is on
/// one scale for every corpus.
public struct FailureModel: Sendable, Equatable, Codable {
    /// Feature names, in order: see `features(_:)`.
    public static let featureNames = ["density", "nearest", "pieces_per_word", "unknown_share",
                                      "continuation_share", "log_pieces"]
    public var means: [Double]
    public var scales: [Double]
    public var weights: [Double]
    public var intercept: Double

    public init(means: [Double], scales: [Double], weights: [Double], intercept: Double) {
        precondition(means.count == Self.featureNames.count && scales.count == means.count && weights.count == means.count,
                     "FailureModel: one mean, scale and weight per feature")
        self.means = means
        self.scales = scales
        self.weights = weights
        self.intercept = intercept
    }

    /// The model's inputs for one document, in `featureNames` order.
    public static func features(_ s: DocumentSignals) -> [Double] {
        [s.density, s.nearest, s.piecesPerWord, s.unknownShare, s.continuationShare, log(1 + Double(s.pieces))]
    }

    /// The predicted probability that the retriever misses the document for one of its queries.
    public func probability(_ s: DocumentSignals) -> Double {
        let x = Self.features(s)
        var z = intercept
        for i in x.indices { z += weights[i] * (x[i] - means[i]) / scales[i] }
        return 1 / (1 + exp(-z))
    }
}
