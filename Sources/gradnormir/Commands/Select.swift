import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR
import TransformerLite

/// `gradnormir select`: which candidate retriever fits a corpus best, by predicted OOD ratio.
struct Select: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank candidate retrievers for a corpus by predicted OOD ratio (fewest out-of-distribution documents first).",
        discussion: """
            Each --model embeds the corpus and the in-distribution --reference into one index and scores both with \
            the same detector. Its threshold is the reference's (1 − --false-alarm) quantile, so every candidate \
            flags the same share of in-distribution documents; the candidate with the smallest share of corpus \
            documents above its threshold ranks first. Prints JSON on standard output (candidates best first, \
            "recommended") and the evidence as a table on standard error. With --out DIR each candidate's \
            predictions are written to DIR/candidate-N.jsonl and a rerun resumes them.
            """)

    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(name: .customLong("model"), help: "A candidate model folder (give two or more).")
    var models: [String] = []
    @Option(help: "In-distribution reference (BEIR folder or JSONL): the documents every candidate serves well.")
    var reference: String
    @Option(help: "The detector (combined: seconds per candidate; gradnormir: seconds per document, give --sample).")
    var detector: DetectorKind = .combined
    @Option(name: .long, parsing: .unconditional, help: "Share of the reference each candidate's threshold flags.")
    var falseAlarm: Double = 0.1
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document (default: each model's max_seq_length).")
    var maxLength: Int?
    @Option(help: "Keep each candidate's predictions in this folder (resumable).") var out: String?
    @Option(name: .long, parsing: .unconditional, help: "BLAS and worker threads (default: OpenBLAS's own choice).")
    var threads: Int?
    @OptionGroup var selecting: SelectionOptions
    @OptionGroup var scoring: ScoringOptions
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    static let vocabulary = CommandVocabulary(
        resumeHint: "rerun with the same corpus, reference, models and arguments to resume, or use another --out")

    struct Output: Encodable {
        let corpus: String
        let reference: String
        let detector: DetectorKind
        let falseAlarm: Double
        let candidates: [CandidateEvidence]
        let recommended: String
        enum CodingKeys: String, CodingKey {
            case corpus, reference, detector, falseAlarm = "false_alarm", candidates, recommended
        }
    }

    func validate() throws {
        if selecting.shard != nil { throw OptionError("select does not take --shard") }
        guard models.count >= 2 else { throw OptionError("give at least two candidates (--model A --model B)") }
        guard falseAlarm > 0, falseAlarm < 1 else { throw OptionError("--false-alarm must be in (0, 1)") }
        if let threads, threads < 1 { throw OptionError("--threads must be at least 1") }
        if detector.needsReference {
            throw OptionError("--detector \(detector.rawValue) measures distance to the reference itself; choose another detector")
        }
        try validating(Self.vocabulary) { try scoring.config(maxLength: maxLength ?? 512).validate() }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            if let threads { BLAS.setThreads(threads) }
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("select: skipped \(skipped) bad line(s) of \(corpus)") }
            guard !docs.isEmpty else { throw GradNormIRError.invalidInput("\(corpus): no documents") }
            let refDocs = try BEIRDataset.loadCorpus(path: reference, onBadLine: onBadLine).documents
            let joint = try RetrieverSelection.jointDocuments(corpus: docs, reference: refDocs)
            selecting.noteSize(command: "select", corpusSize: docs.count)
            let selection = try selecting.selection(seed: scoring.seed)
            let positions = try selection.indices(in: docs) + Array(docs.count..<joint.count)
            if detector == .gradnormir { try scoring.requireMoreDocuments(joint.count, "the corpus and the reference have") }
            // Every model loads before any work starts, so a bad folder fails at once.
            let retrievers = try models.map { try Retriever.load(folder: $0) }
            if let out { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
            let lock = try out.map { try OutputLock(path: OutputLock.path(forFolder: $0)) }
            defer { withExtendedLifetime(lock) {} }
            var evidence: [CandidateEvidence] = []
            for (n, model) in retrievers.enumerated() {
                note("select: candidate \(n + 1) of \(models.count): \(models[n])")
                let m = try model.validatedMaxLength(maxLength)
                let config = scoring.config(maxLength: m)
                var settings = ScoreSettings(
                    corpus: corpus, corpusFingerprint: Fingerprint.of(documents: joint), documents: joint.count,
                    scored: selection.recorded, model: models[n], modelFingerprint: model.fingerprint, config: config)
                settings.detector = detector.rawValue
                let file = try out.map {
                    try ScoreFile(path: ($0 as NSString).appendingPathComponent("candidate-\(n + 1).jsonl"),
                                  expectedIds: positions.map { joint[$0].id }, settings: settings)
                }
                var predictions: [(id: String, score: Double?)] = []
                if let file, file.done.count == positions.count {
                    note("select: \(file.path) already has every prediction")
                } else {
                    var embedProgress = ProgressReporter(label: "embedding", total: joint.count)
                    let embeddings = model.corpusEmbeddings(ids: joint.map { model.tokenizer.encode($0.fullText, maxLength: m) }) {
                        embedProgress.update($0, force: $0 == joint.count)
                    }
                    let predictor = try Predictor(detector: detector, retriever: model, documents: joint, embeddings: embeddings,
                                                  config: config, seed: config.seed)
                    predictions = try Predict.predict(positions, with: predictor, into: file)
                }
                // With a file, the evidence comes from its numbers: the same on a rerun that reads them back.
                if let file { predictions = try ScoreFile.read(file.path) }
                evidence.append(try RetrieverSelection.evidence(model: models[n], modelFingerprint: model.fingerprint,
                                                                predictions: predictions, falseAlarm: falseAlarm))
            }
            let ranked = RetrieverSelection.rank(evidence)
            try printJSON(Output(corpus: corpus, reference: reference, detector: detector, falseAlarm: falseAlarm,
                                 candidates: ranked, recommended: ranked[0].model))
            var table = MarkdownTable(["rank", "model", "OOD ratio", "OOD / scored", "threshold", "reference above", "mean score", "reference mean"])
            for (i, c) in ranked.enumerated() {
                table.add(["\(i + 1)", c.model, String(format: "%.3f", c.oodRatio), "\(c.oodCount) / \(c.scored)",
                              String(format: "%.4g", c.threshold), String(format: "%.3f", c.referenceOODRatio),
                              String(format: "%.4g", c.meanScore), String(format: "%.4g", c.referenceMean)])
            }
            note("select: \(detector.rawValue) detector, thresholds at a \(falseAlarm) false-alarm rate on \(reference)\n" + table.render())
        }
    }
}
