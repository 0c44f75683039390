import Foundation

/// Settings of GradNormIR document scoring (METHOD.md §"Per-document score"). Defaults follow the
/// paper except where noted; every depth is a parameter.
public struct ScoringConfig: Codable, Sendable, Equatable {
    /// Positives per document (n_pos; the paper's 16).
    public var positives: Int = 16
    /// Negatives per record (n_neg; the paper's 4).
    public var negatives: Int = 4
    /// Dropout probability on the document query's last-layer token states (no rescaling).
    public var dropout: Float = 0.02
    /// InfoNCE temperature τ.
    public var temperature: Double = 0.05
    /// Maximum tokens per sequence, special tokens included.
    public var maxLength: Int = 512
    /// Seed of the dropout masks; document i uses a generator derived from (seed, i).
    public var seed: UInt64 = 0
    /// The authors' quirk: skip the first remaining neighbour of each positive (METHOD.md step 3).
    public var skipFirstNegative: Bool = true
    /// Depth of d's excluded neighbourhood N(d); nil = the size rule `exclusionDepth(corpusSize:)`.
    public var exclusionDepth: Int?
    /// Depth of each positive's candidate neighbourhood N(x); nil = the size rule.
    public var candidateDepth: Int?

    public init() {}

    /// The smallest maximum length scoring accepts: below it a record carries next to no text.
    public static let minimumMaxLength = 8

    /// N(d)'s depth: min(100, max(2·n_pos, ⌈|C|/10⌉)). At |C| ≥ 1,000 this is the paper's 100; on
    /// small corpora it stays a tenth of the corpus (so d's neighbourhood cannot swallow it), but
    /// never less than twice the positives (which come from right around d).
    public func exclusionDepth(corpusSize n: Int) -> Int {
        exclusionDepth ?? min(100, max(2 * positives, (n + 9) / 10), max(0, n - 1))
    }

    /// N(x)'s depth: min(100, |C| − 1) — the paper's 100 wherever the corpus allows.
    public func candidateDepth(corpusSize n: Int) -> Int {
        candidateDepth ?? min(100, max(0, n - 1))
    }

    /// How deep each document's neighbour list must go: the deeper of N(d) and N(x).
    func neighbourDepth(corpusSize n: Int) -> Int {
        max(exclusionDepth(corpusSize: n), candidateDepth(corpusSize: n))
    }

    /// Checks the values a user can set.
    public func validate() throws {
        func bad(_ name: String, _ reason: String) -> GradNormIRError { .invalidSetting(name: name, reason: reason) }
        guard positives >= 1 else { throw bad("positives", "must be at least 1") }
        guard negatives >= 1 else { throw bad("negatives", "must be at least 1") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout", "must be in [0, 1)") }
        guard temperature > 0, temperature.isFinite else { throw bad("temperature", "must be a positive number") }
        guard maxLength >= Self.minimumMaxLength else {
            throw bad("maxLength", "must be at least \(Self.minimumMaxLength) ([CLS], [SEP] and some content)")
        }
        if let d = exclusionDepth, d < 0 { throw bad("exclusionDepth", "must be non-negative") }
        if let d = candidateDepth, d < 1 { throw bad("candidateDepth", "must be at least 1") }
    }
}
