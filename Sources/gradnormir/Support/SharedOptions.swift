import ArgumentParser
import CommandLineSupport
import GradNormIR
import TransformerLite

/// Which documents of the corpus a command scores (the index always holds them all).
struct SelectionOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Score only the first N documents.")
    var limit: Int?
    @Option(parsing: .unconditional, help: "Score a seeded random sample of N documents, in corpus order (the paper's regime of a large index with few scored documents).")
    var sample: Int?
    @Option(help: "Score only the documents whose ids this file lists, one per line (scored in corpus order).")
    var ids: String?
    @Option(help: "Score only shard K of N (K/N): of the documents chosen, those at positions K, K+N, K+2N, … (1-based); `gradnormir merge` joins the N shard files into the file of one run.")
    var shard: String?

    func validate() throws {
        if let limit, limit < 1 { throw OptionError("--limit must be at least 1") }
        if let sample, sample < 1 { throw OptionError("--sample must be at least 1") }
        if [limit != nil, sample != nil, ids != nil].filter({ $0 }).count > 1 {
            throw OptionError("use one of --limit, --sample and --ids")
        }
        if let shard {
            do { _ = try Shard(parsing: shard) } catch GradNormIRError.invalidSetting(_, let reason) {
                throw OptionError("--shard \(reason)")
            }
        }
    }

    /// The selection, `--sample` drawn with `seed`.
    func selection(seed: UInt64) throws -> DocumentSelection {
        if let ids { return try DocumentSelection.readIds(ids) }
        if let sample { return .sample(sample, seed: seed) }
        if let limit { return .first(limit) }
        return .all
    }

    /// The documents this run scores (positions in the corpus, ascending) and the settings that
    /// record the choice: `settings.scored`, and for a shard `settings.shard` and `settings.selected`.
    func choose(in documents: [Document], seed: UInt64, settings: inout ScoreSettings) throws -> [Int] {
        let selection = try self.selection(seed: seed)
        let chosen = try selection.indices(in: documents)
        settings.scored = selection.recorded
        guard let shard else { return chosen }
        let s = try Shard(parsing: shard)
        settings.shard = s.description
        settings.selected = chosen.count
        return s.part(of: chosen)
    }

    /// Says when N is not smaller than the corpus (every document is then scored).
    func noteSize(command: String, corpusSize n: Int) {
        if let sample, sample >= n { note("\(command): --sample \(sample) is not smaller than the corpus: scoring all \(n) documents") }
        if let limit, limit > n { note("\(command): --limit \(limit) is larger than the corpus: scoring all \(n) documents") }
    }
}

/// The GradNormIR scoring settings (`ScoringConfig`), shared by `score` and `predict`.
/// How much a record keeps for its backward pass.
struct MemoryOptions: ParsableArguments {
    @Flag(help: "Recompute the feed-forward pre-activations in the backward pass instead of keeping them: about 9% more arithmetic per record, about a third less activation memory (one 6 × 512-token record of all-MiniLM-L6-v2: 356 MB instead of 446 MB peak); the same results.")
    var lowMemory = false

    var mode: ActivationMemory { lowMemory ? .recomputeFeedForward : .saveAll }
}

struct ScoringOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Positives per document.") var positives: Int = 16
    @Option(parsing: .unconditional, help: "Negatives per record.") var negatives: Int = 4
    @Option(parsing: .unconditional, help: "Dropout probability on the document query's last-layer states.") var dropout: Float = 0.02
    @Option(parsing: .unconditional, help: "InfoNCE temperature.") var temperature: Double = 0.05
    @Option(parsing: .unconditional, help: "Seed of the dropout masks and of --sample.") var seed: UInt64 = 0
    @Option(name: .long, parsing: .unconditional, help: "Depth of the document's excluded neighbourhood N(d) (default: min(100, max(2·positives, ⌈|C|/10⌉))).")
    var exclusionDepth: Int?
    @Option(name: .long, parsing: .unconditional, help: "Depth of each positive's candidate neighbourhood N(x) (default: min(100, |C|−1)).")
    var candidateDepth: Int?
    @Flag(name: .long, inversion: .prefixedNo, help: "Skip the first remaining neighbour of each positive (the authors' code does).")
    var skipFirstNegative = true

    /// GradNormIR draws its positives and negatives from other documents: refuses an index of
    /// `count` documents that cannot hold them (`holder`: "corpus.jsonl has"), naming the options.
    func requireMoreDocuments(_ count: Int, _ holder: String) throws {
        guard positives + negatives < count else {
            throw GradNormIRError.invalidInput("--positives \(positives) and --negatives \(negatives) need more than "
                                               + "\(positives + negatives) documents; \(holder) \(count)")
        }
    }

    /// The config at `maxLength` tokens.
    func config(maxLength: Int) -> ScoringConfig {
        var c = ScoringConfig()
        c.positives = positives
        c.negatives = negatives
        c.dropout = dropout
        c.temperature = temperature
        c.maxLength = maxLength
        c.seed = seed
        c.skipFirstNegative = skipFirstNegative
        c.exclusionDepth = exclusionDepth
        c.candidateDepth = candidateDepth
        return c
    }
}
