import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR
import TransformerLite

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score every document of a corpus with GradNormIR, one JSON line per document.",
        discussion: """
            Writes {"_id", "gradnorm" (null when the document has no valid record), "records", "loss"[, "reason"]} \
            per document, in corpus order, flushing each line to disk. Rerun with the same arguments after an \
            interruption: the complete lines are kept and scoring resumes with the next document.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output JSONL file (a sidecar FILE.meta.json records the settings for resuming).")
    var out: String
    @Option(parsing: .unconditional, help: "Positives per document.") var positives: Int = 16
    @Option(parsing: .unconditional, help: "Negatives per record.") var negatives: Int = 4
    @Option(parsing: .unconditional, help: "Dropout probability on the document query's last-layer states.") var dropout: Float = 0.02
    @Option(parsing: .unconditional, help: "InfoNCE temperature.") var temperature: Double = 0.05
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document, special tokens included.") var maxLength: Int = 512
    @Option(parsing: .unconditional, help: "Seed of the dropout masks.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Score only the first N documents (the index still holds the whole corpus).") var limit: Int?
    @Option(parsing: .unconditional, help: "Score a seeded random sample of N documents, in corpus order (the index still holds the whole corpus; the paper's regime of a large index with few scored documents).")
    var sample: Int?
    @Option(name: .long, parsing: .unconditional, help: "Depth of the document's excluded neighbourhood N(d) (default: min(100, max(2·positives, ⌈|C|/10⌉))).")
    var exclusionDepth: Int?
    @Option(name: .long, parsing: .unconditional, help: "Depth of each positive's candidate neighbourhood N(x) (default: min(100, |C|−1)).")
    var candidateDepth: Int?
    @Flag(name: .long, inversion: .prefixedNo, help: "Skip the first remaining neighbour of each positive (the authors' code does).")
    var skipFirstNegative = true
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail
    @Option(help: "A persisted index of the corpus (`gradnormir index`, same model and --max-length): its embeddings are read instead of computed.")
    var index: String?

    static let vocabulary = CommandVocabulary(
        resumeHint: "rerun with the same corpus, model and arguments to resume, or use another --out")

    var config: ScoringConfig {
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

    func validate() throws {
        try validating(Self.vocabulary) { try config.validate() }
        if let limit, limit < 1 { throw OptionError("--limit must be at least 1") }
        if let sample, sample < 1 { throw OptionError("--sample must be at least 1") }
        if limit != nil && sample != nil { throw OptionError("use --limit or --sample, not both") }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let config = self.config
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("score: skipped \(skipped) bad line(s) of \(corpus)") }
            guard !docs.isEmpty else { throw GradNormIRError.invalidInput("\(corpus): no documents") }
            // Everything that can be refused is checked before the output is created.
            guard positives + negatives < docs.count else {
                throw GradNormIRError.invalidInput(
                    "--positives \(positives) and --negatives \(negatives) need more than \(positives + negatives) documents; \(corpus) has \(docs.count)")
            }
            let model = try options.load()
            _ = try model.validatedMaxLength(maxLength)
            let saved = try index.map { folder in
                try EmbeddingIndex.load(folder: folder, documents: docs, retriever: model, maxLength: maxLength)
            }
            if let sample, sample >= docs.count {
                note("score: --sample \(sample) is not smaller than the corpus: scoring all \(docs.count) documents")
            }
            if let limit, limit > docs.count {
                note("score: --limit \(limit) is larger than the corpus: scoring all \(docs.count) documents")
            }
            let chosen: [Int]
            if let sample {
                chosen = seededSample(count: docs.count, sample: sample, seed: seed)
            } else {
                chosen = Array(0..<min(limit ?? docs.count, docs.count))
            }
            let targets = chosen.map { docs[$0] }
            let settings = ScoreSettings(
                corpus: corpus, corpusFingerprint: Fingerprint.of(documents: docs), documents: docs.count,
                scored: sample.map { "sample \($0)" } ?? limit.map { "first \($0)" } ?? "all",
                model: model.checkpoint.folder, modelFingerprint: model.fingerprint, config: config)
            let lock = try OutputLock(path: OutputLock.path(forFile: out))
            defer { withExtendedLifetime(lock) {} }
            let file = try ScoreFile(path: out, expectedIds: targets.map(\.id), settings: settings)
            if file.done.count == targets.count {
                note("score: \(out) already has all \(targets.count) documents")
                return
            }
            if !file.done.isEmpty { note("score: resuming after \(file.done.count) of \(targets.count) documents") }

            let corpusIndex: CorpusIndex
            if let saved {
                corpusIndex = try CorpusIndex(documents: docs.map(\.fullText), embeddings: saved.embeddings,
                                              retriever: model, config: config)
            } else {
                var embedProgress = ProgressReporter(label: "embedding", total: docs.count)
                corpusIndex = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: config) {
                    embedProgress.update($0, force: $0 == docs.count)
                }
            }
            let scorer = GradNormScorer(retriever: model, corpus: corpusIndex)
            var progress = ProgressReporter(label: "scoring", total: targets.count, alreadyDone: file.done.count)
            let started = Date()
            let first = file.done.count
            for j in file.done.count..<targets.count {
                let d = chosen[j]
                try file.append(scorer.score(document: d, id: docs[d].id).jsonLine)
                progress.update(j + 1, force: j + 1 == targets.count)
            }
            let secs = Date().timeIntervalSince(started)
            note("score: \(targets.count - first) documents in \(String(format: "%.1f", secs)) s "
                 + "(\(String(format: "%.3f", Double(targets.count - first) / max(secs, 1e-9))) documents/s, "
                 + "\(BLAS.engineThreads) thread(s)); index of \(docs.count) documents")
        }
    }
}
