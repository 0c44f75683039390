import Foundation

/// What one candidate retriever's detector says about a corpus: its threshold, set on the
/// in-distribution reference at the chosen false-alarm rate, and the share of the corpus above it.
public struct CandidateEvidence: Sendable, Encodable {
    public let model: String
    public let modelFingerprint: String
    /// The (1 − falseAlarm) quantile of the reference documents' scores.
    public let threshold: Double
    /// Reference documents scored, and the share of them above the threshold (≈ the false-alarm rate).
    public let referenceScored: Int
    public let referenceOODRatio: Double
    public let referenceMean: Double
    /// Corpus documents scored and those above the threshold.
    public let scored: Int
    public let oodCount: Int
    public let oodRatio: Double
    /// Mean score of the corpus documents.
    public let meanScore: Double

    enum CodingKeys: String, CodingKey {
        case model, modelFingerprint = "model_fingerprint", threshold, referenceScored = "reference_scored"
        case referenceOODRatio = "reference_ood_ratio", referenceMean = "reference_mean", scored
        case oodCount = "ood_count", oodRatio = "ood_ratio", meanScore = "mean_score"
    }
}

/// Ranks candidate retrievers for a corpus by their predicted OOD ratio (METHOD.md, "which
/// retriever fits"). Each candidate scores, with the same detector, the corpus's documents and
/// the reference's, both inside one index of corpus ∪ reference (so a reference document is
/// scored in the same regime — index size, neighbourhood — as a corpus document); its threshold is
/// the reference's (1 − falseAlarm) quantile, so every candidate flags the same share of
/// in-distribution documents and the OOD ratios compare across retrievers.
public enum RetrieverSelection {
    /// Id prefix of the reference documents inside the joint index (and its prediction file).
    public static let referencePrefix = "reference:"

    /// The documents of the joint index: the corpus, then the reference with prefixed ids.
    /// Throws when an id would occur twice.
    public static func jointDocuments(corpus: [Document], reference: [Document]) throws -> [Document] {
        let joint = corpus + reference.map { Document(id: referencePrefix + $0.id, title: $0.title, text: $0.text) }
        var seen = Set<String>()
        for d in joint where !seen.insert(d.id).inserted {
            throw GradNormIRError.invalidInput("document id '\(d.id)' occurs twice in the corpus and the prefixed reference")
        }
        return joint
    }

    /// The evidence of one candidate from its predictions of the joint index's documents
    /// (reference documents recognised by `referencePrefix`; unscored ones left out).
    public static func evidence(model: String, modelFingerprint: String, predictions: [(id: String, score: Double?)],
                                falseAlarm: Double) throws -> CandidateEvidence {
        guard falseAlarm > 0, falseAlarm < 1 else {
            throw GradNormIRError.invalidSetting(name: "falseAlarm", reason: "must be in (0, 1)")
        }
        let reference = predictions.filter { $0.id.hasPrefix(referencePrefix) }.compactMap(\.score)
        let corpus = predictions.filter { !$0.id.hasPrefix(referencePrefix) }.compactMap(\.score)
        guard reference.count >= 2 else {
            throw GradNormIRError.invalidInput("\(model): \(reference.count) reference document(s) scored; at least 2 are needed for a threshold")
        }
        guard !corpus.isEmpty else { throw GradNormIRError.invalidInput("\(model): no corpus document scored") }
        let threshold = Metrics.quantile(reference, 1 - falseAlarm)!
        let ood = corpus.filter { $0 > threshold }.count
        return CandidateEvidence(
            model: model, modelFingerprint: modelFingerprint, threshold: threshold, referenceScored: reference.count,
            referenceOODRatio: Threshold.oodRatio(reference, threshold: threshold),
            referenceMean: reference.reduce(0, +) / Double(reference.count), scored: corpus.count, oodCount: ood,
            oodRatio: Double(ood) / Double(corpus.count), meanScore: corpus.reduce(0, +) / Double(corpus.count))
    }

    /// Candidates best first: the lowest OOD ratio, ties broken by the lower mean score relative
    /// to the candidate's own reference mean, then by the order given.
    public static func rank(_ candidates: [CandidateEvidence]) -> [CandidateEvidence] {
        candidates.enumerated().sorted { a, b in
            if a.element.oodRatio != b.element.oodRatio { return a.element.oodRatio < b.element.oodRatio }
            let ra = a.element.meanScore - a.element.referenceMean, rb = b.element.meanScore - b.element.referenceMean
            if ra != rb { return ra < rb }
            return a.offset < b.offset
        }.map(\.element)
    }
}
