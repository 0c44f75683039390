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
            interruption: the complete lines are kept and scoring resumes with the next document. With more than \
            one thread, whole documents are scored side by side, one per thread on single-threaded products (a \
            batch of two per thread at a time), which scales better than splitting each record's products; the \
            records are computed as on one thread (same bits).
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output JSONL file (a sidecar FILE.meta.json records the settings for resuming).")
    var out: String
    @OptionGroup var scoring: ScoringOptions
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document, special tokens included.") var maxLength: Int = 512
    @OptionGroup var selecting: SelectionOptions
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail
    @Option(help: "A persisted index of the corpus (`gradnormir index`, same model and --max-length): its embeddings are read instead of computed.")
    var index: String?
    @OptionGroup var memory: MemoryOptions

    static let vocabulary = CommandVocabulary(
        resumeHint: "rerun with the same corpus, model and arguments to resume, or use another --out")

    var config: ScoringConfig { scoring.config(maxLength: maxLength) }

    func validate() throws {
        try validating(Self.vocabulary) { try config.validate() }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let config = self.config
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("score: skipped \(skipped) bad line(s) of \(corpus)") }
            guard !docs.isEmpty else { throw GradNormIRError.invalidInput("\(corpus): no documents") }
            // Everything that can be refused is checked before the output is created.
            try scoring.requireMoreDocuments(docs.count, "\(corpus) has")
            let model = try options.load()
            _ = try model.validatedMaxLength(maxLength)
            let saved = try index.map { folder in
                try EmbeddingIndex.load(folder: folder, documents: docs, retriever: model, maxLength: maxLength)
            }
            selecting.noteSize(command: "score", corpusSize: docs.count)
            var settings = ScoreSettings(
                corpus: corpus, corpusFingerprint: Fingerprint.of(documents: docs), documents: docs.count,
                scored: "", model: model.checkpoint.folder, modelFingerprint: model.fingerprint, config: config)
            let chosen = try selecting.choose(in: docs, seed: config.seed, settings: &settings)
            let targets = chosen.map { docs[$0] }
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
            let scorer = GradNormScorer(retriever: model, corpus: corpusIndex, memory: memory.mode)
            var progress = ProgressReporter(label: "scoring", total: targets.count, alreadyDone: file.done.count)
            let started = Date()
            let first = file.done.count
            // Whole documents side by side, one per thread (a batch of a few per thread at a time,
            // written in order as each batch completes).
            let batch = GradNormScorer.documentsPerBatch
            var j = file.done.count
            while j < targets.count {
                let part = chosen[j..<min(j + batch, targets.count)].map { (index: $0, id: docs[$0].id) }
                for s in scorer.score(documents: part) { try file.append(s.jsonLine) }
                j += part.count
                progress.update(j, force: j == targets.count)
            }
            let secs = Date().timeIntervalSince(started)
            note("score: \(targets.count - first) documents in \(String(format: "%.1f", secs)) s "
                 + "(\(String(format: "%.3f", Double(targets.count - first) / max(secs, 1e-9))) documents/s, "
                 + "\(BLAS.engineThreads) thread(s)); index of \(docs.count) documents")
        }
    }
}
