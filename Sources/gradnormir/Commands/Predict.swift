import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR
import TransformerLite

extension DetectorKind: ExpressibleByArgument {}

/// `gradnormir predict`: one detector's out-of-distribution score for documents of a corpus.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict which documents the retriever will miss: one JSON line per document with its ood_score.",
        discussion: """
            Writes {"_id", "ood_score", "detector", the query-free signals (density, nearest, pieces_per_word, \
            unknown_share, continuation_share, pieces)[, "gradnorm", "loss", "records"]} per document, in corpus \
            order, flushing as it goes; rerun with the same arguments to resume. Higher ood_score = more likely to \
            be missed; for one model and detector it is on one scale for every corpus, so `calibrate` and `detect` \
            read these files like score files. Detectors: gradnormir (the default: the paper's score, seconds per \
            document; use --sample or --ids on a large corpus), combined (the predicted probability that recall@10 \
            < 1 from the query-free signals, fitted on training corpora; about a thousand documents a second), \
            density, nearest, tokens (word pieces per word), and knn, mahalanobis and ipq (need --reference).
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output JSONL file (a sidecar FILE.meta.json records the settings for resuming).")
    var out: String
    @Option(help: "The detector.") var detector: DetectorKind = .default
    @Option(help: "A persisted index of the corpus (`gradnormir index`, same model and --max-length): its embeddings are read instead of computed.")
    var index: String?
    @Option(help: "In-distribution reference (BEIR folder or JSONL) for the knn, mahalanobis and ipq detectors.")
    var reference: String?
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document (default: the model's max_seq_length).")
    var maxLength: Int?
    @OptionGroup var selecting: SelectionOptions
    @OptionGroup var scoring: ScoringOptions
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    static let vocabulary = CommandVocabulary(
        resumeHint: "rerun with the same corpus, model, detector and arguments to resume, or use another --out")

    func validate() throws {
        try validating(Self.vocabulary) { try scoring.config(maxLength: maxLength ?? 512).validate() }
        if detector.needsReference && reference == nil {
            throw OptionError("--detector \(detector.rawValue) needs --reference (an in-distribution corpus)")
        }
        if !detector.needsReference && reference != nil {
            throw OptionError("--reference is only used by the knn, mahalanobis and ipq detectors")
        }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("predict: skipped \(skipped) bad line(s) of \(corpus)") }
            guard docs.count >= 2 else { throw GradNormIRError.invalidInput("\(corpus): needs at least 2 documents, has \(docs.count)") }
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let config = scoring.config(maxLength: m)
            try config.validate()
            // Everything that can be refused is checked before the output is created.
            if detector == .gradnormir { try scoring.requireMoreDocuments(docs.count, "\(corpus) has") }
            let refDocs = try reference.map { try BEIRDataset.loadCorpus(path: $0, onBadLine: onBadLine).documents }
            let saved = try index.map { try EmbeddingIndex.load(folder: $0, documents: docs, retriever: model, maxLength: m) }
            selecting.noteSize(command: "predict", corpusSize: docs.count)
            var settings = ScoreSettings(
                corpus: corpus, corpusFingerprint: Fingerprint.of(documents: docs), documents: docs.count,
                scored: "", model: model.checkpoint.folder, modelFingerprint: model.fingerprint, config: config)
            settings.detector = detector.rawValue
            settings.referenceFingerprint = refDocs.map { Fingerprint.of(documents: $0) }
            let chosen = try selecting.choose(in: docs, seed: config.seed, settings: &settings)
            let lock = try OutputLock(path: OutputLock.path(forFile: out))
            defer { withExtendedLifetime(lock) {} }
            let file = try ScoreFile(path: out, expectedIds: chosen.map { docs[$0].id }, settings: settings)
            if file.done.count == chosen.count {
                note("predict: \(out) already has all \(chosen.count) documents")
                return
            }
            if !file.done.isEmpty { note("predict: resuming after \(file.done.count) of \(chosen.count) documents") }

            let embeddings: [[Float]]
            if let saved {
                embeddings = saved.embeddings
            } else {
                var progress = ProgressReporter(label: "embedding", total: docs.count)
                embeddings = model.corpusEmbeddings(ids: docs.map { model.tokenizer.encode($0.fullText, maxLength: m) }) {
                    progress.update($0, force: $0 == docs.count)
                }
            }
            let refEmbeddings = try refDocs.map { try model.searchEmbeddings($0.map(\.fullText), maxLength: m) }
            let predictor = try Predictor(detector: detector, retriever: model, documents: docs, embeddings: embeddings,
                                          config: config, reference: refEmbeddings, seed: config.seed)
            let started = Date()
            let first = file.done.count
            _ = try Self.predict(chosen, with: predictor, into: file)
            let secs = Date().timeIntervalSince(started)
            note("predict: \(chosen.count - first) documents in \(String(format: "%.1f", secs)) s "
                 + "(\(String(format: "%.2f", Double(chosen.count - first) / max(secs, 1e-9))) documents/s, detector "
                 + "\(detector.rawValue), \(BLAS.engineThreads) thread(s)); index of \(docs.count) documents")
        }
    }

    /// Predicts the documents at `positions` not yet in `file` (all of them without a file),
    /// appending each line, with progress; returns the (id, ood_score) of those it predicted.
    static func predict(_ positions: [Int], with predictor: Predictor,
                        into file: ScoreFile?) throws -> [(id: String, score: Double?)] {
        var results: [(id: String, score: Double?)] = []
        let first = file?.done.count ?? 0
        var progress = ProgressReporter(label: "predicting", total: positions.count, alreadyDone: first)
        // GradNormIR: two documents per thread at a time, side by side (as `score`).
        let step = predictor.detector == .gradnormir ? GradNormScorer.documentsPerBatch : 256
        var j = first
        while j < positions.count {
            let batch = Array(positions[j..<min(positions.count, j + step)])
            for p in try predictor.predict(batch) {
                try file?.append(p.jsonLine)
                results.append((p.id, p.oodScore))
            }
            j += batch.count
            progress.update(j, force: j == positions.count)
        }
        return results
    }
}
