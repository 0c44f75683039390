import Foundation

/// Which statistic of the in-distribution reference scores is the decision threshold
/// (METHOD.md §"Decisions"): their mean (the paper's) or a quantile.
public enum ThresholdStatistic: Sendable, Equatable {
    case mean
    /// The type-7 quantile at one of `Threshold.quantileLevels`.
    case quantile(Double)

    /// Parses `mean` or `q<level>` with a level of `Threshold.quantileLevels` (`q0.95`).
    public init?(name: String) {
        if name == "mean" { self = .mean; return }
        guard let p = Threshold.quantileLevels.first(where: { "q\($0)" == name }) else { return nil }
        self = .quantile(p)
    }

    /// `mean` or `q<level>`, as written in a threshold file.
    public var name: String {
        switch self {
        case .mean: return "mean"
        case .quantile(let p): return "q\(p)"
        }
    }

    /// Every statistic a threshold can use, by name.
    public static var names: [String] { ["mean"] + Threshold.quantileLevels.map { "q\($0)" } }
}

/// A calibrated decision threshold: the statistics of an in-distribution reference's scores and
/// the one chosen as the threshold. A document whose score is above it is out-of-distribution.
/// Stored as the JSON file that `gradnormir calibrate` writes and `detect` reads.
public struct Threshold: Codable, Sendable {
    /// The quantile levels computed at calibration.
    public static let quantileLevels = [0.5, 0.75, 0.9, 0.95, 0.99]

    public var threshold: Double
    /// The statistic's name (`mean`, `q0.95`, …).
    public var statistic: String
    public var mean: Double
    /// Sample standard deviation (n − 1).
    public var std: Double
    /// Reference documents scored, and those left unscored.
    public var n: Int
    public var unscored: Int
    /// `q<level>` → the type-7 quantile of the scores.
    public var quantiles: [String: Double]
    /// The reference's score file.
    public var scores: String
    /// The reference's scoring settings (its score file's sidecar), to check the regime matches.
    public var settings: String?

    /// Calibrates on the scores of an in-distribution reference (`source` names their file).
    /// Throws when fewer than two documents are scored.
    public static func calibrate(scores rows: [(id: String, score: Double?)], statistic: ThresholdStatistic,
                                 source: String, settings: String?) throws -> Threshold {
        let values = rows.compactMap(\.score)
        guard values.count >= 2 else {
            throw GradNormIRError.invalidInput("\(source): needs at least 2 scored documents, found \(values.count)")
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        var q: [String: Double] = [:]
        for p in quantileLevels { q["q\(p)"] = Metrics.quantile(values, p) ?? mean }
        let threshold: Double
        switch statistic {
        case .mean: threshold = mean
        case .quantile(let p): threshold = q["q\(p)"] ?? mean
        }
        return Threshold(threshold: threshold, statistic: statistic.name, mean: mean, std: std, n: values.count,
                         unscored: rows.count - values.count, quantiles: q, scores: source, settings: settings)
    }

    /// Reads a threshold file; errors name the file.
    public static func read(_ path: String) throws -> Threshold {
        guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
        guard let t = try? JSONDecoder().decode(Threshold.self, from: data) else {
            throw GradNormIRError.malformedJSON(path: path, line: nil, reason: "not a threshold file from `gradnormir calibrate`")
        }
        return t
    }

    /// The file's JSON: pretty-printed, keys sorted.
    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }

    /// The share of the scored documents whose score is above `threshold`; unscored documents
    /// (nil) are left out. 0 when none is scored. The one definition of the OOD ratio, for
    /// `detect`, the simulation's triggers and the bench.
    public static func oodRatio(_ scores: [Double?], threshold: Double) -> Double {
        let scored = scores.compactMap { $0 }
        return Double(scored.filter { $0 > threshold }.count) / Double(max(1, scored.count))
    }

    /// Flags the documents of a scored corpus above the threshold and decides: update when the
    /// OOD ratio (over the scored documents) exceeds `gamma`. Throws when no document is scored.
    /// `scoreSettings` (the corpus score file's sidecar) is compared with the reference's to say
    /// whether the two were scored in the same regime.
    public func detect(scores rows: [(id: String, score: Double?)], source: String, gamma: Double,
                       scoreSettings: String?) throws -> Detection {
        guard gamma >= 0, gamma <= 1 else { throw GradNormIRError.invalidSetting(name: "gamma", reason: "must be in [0, 1]") }
        guard !rows.isEmpty else { throw GradNormIRError.invalidInput("\(source): no documents") }
        let ood = rows.filter { ($0.score ?? -.infinity) > threshold }.map(\.id)
        let unscored = rows.filter { $0.score == nil }.map(\.id)
        guard unscored.count < rows.count else {
            throw GradNormIRError.invalidInput("\(source): none of its \(rows.count) documents is scored: nothing to decide")
        }
        let ratio = Self.oodRatio(rows.map(\.score), threshold: threshold)
        var regime = Detection.Regime.unknown
        if let ref = settings, let mine = scoreSettings {
            regime = Self.sameRegime(ref, mine) ? .same : .different
        }
        return Detection(scores: source, threshold: threshold, thresholdStatistic: statistic, documents: rows.count,
                         scored: rows.count - unscored.count, unscoredCount: unscored.count, unscored: unscored,
                         oodCount: ood.count,
                         oodRatio: ratio, gamma: gamma, decision: ratio > gamma ? .update : .keep,
                         regime: regime, ood: ood)
    }

    /// Whether two score files' settings describe the same regime: the same model (by
    /// fingerprint), scoring config and index size (the corpus itself may differ). Settings of
    /// an earlier version (no fingerprints) compare the model folder instead.
    static func sameRegime(_ a: String, _ b: String) -> Bool {
        if let x = ScoreSettings.decode(a), let y = ScoreSettings.decode(b) {
            return x.config == y.config && x.documents == y.documents && x.modelFingerprint == y.modelFingerprint
                && x.detector == y.detector && x.referenceFingerprint == y.referenceFingerprint
        }
        func parse(_ s: String) -> [String: Any]? { try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] }
        guard let x = parse(a), let y = parse(b) else { return false }
        let cx = (x["config"] as? NSDictionary), cy = (y["config"] as? NSDictionary)
        return cx == cy && (x["documents"] as? Int) == (y["documents"] as? Int) && (x["model"] as? String) == (y["model"] as? String)
    }
}

/// What `Threshold.detect` found in one scored corpus.
public struct Detection: Encodable, Sendable {
    public enum Decision: String, Encodable, Sendable { case update, keep }
    /// Whether the corpus was scored in the threshold's regime (`unknown`: a settings file is missing).
    public enum Regime: String, Encodable, Sendable { case same, different, unknown }

    public let scores: String
    public let threshold: Double
    public let thresholdStatistic: String
    public let documents: Int
    public let scored: Int
    public let unscoredCount: Int
    /// Ids of the documents without a score.
    public let unscored: [String]
    public let oodCount: Int
    public let oodRatio: Double
    public let gamma: Double
    public let decision: Decision
    public let regime: Regime
    /// Ids of the documents above the threshold, in file order.
    public let ood: [String]

    /// The share of the documents left unscored.
    public var unscoredShare: Double { Double(unscoredCount) / Double(max(1, documents)) }

    enum CodingKeys: String, CodingKey {
        case scores, threshold, thresholdStatistic = "threshold_statistic", documents, scored
        case unscoredCount = "unscored_count", unscored
        case oodCount = "ood_count", oodRatio = "ood_ratio", gamma, decision, regime, ood
    }
}
