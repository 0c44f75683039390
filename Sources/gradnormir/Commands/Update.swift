import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR
import TransformerLite

struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune the retriever on a corpus without labels and save the updated model.",
        discussion: """
            The unsupervised update of METHOD.md: each step takes a batch of documents, uses a random \
            contiguous crop of 10–50% of each document's tokens as its query and the rest of the document as its \
            positive (the inverse cloze task; --positive document: the whole document, the authors' task), the \
            batch's other documents as negatives (InfoNCE, cosine, temperature τ), clips the \
            gradient's global norm and takes one AdamW step (linear warm-up and decay). No dropout unless \
            --dropout (training-mode hidden dropout, fresh masks every step); position embeddings are \
            trained. A batch holds near neighbours (by the starting model: hard in-batch negatives; --batching random is the authors' shuffle). \
            --replay mixes documents the model already serves into every batch (a replay buffer: --replay-share of \
            each batch, drawn afresh at every step), so that the update does not forget them. OUT receives a Hugging Face / sentence-transformers model folder \
            (model.safetensors, config and tokenizer files) and update.json (the summary). The state \
            (parameters, AdamW moments, step) is saved to OUT/.update-state/ every --save-every steps: rerun the \
            same command after an interruption to resume; the result equals an uninterrupted run's, bit for bit \
            (same --threads). A rerun with other settings, corpus or model is refused (--restart starts over).
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output folder for the updated model, update.json and the resume state.")
    var out: String
    @Option(parsing: .unconditional, help: "Passes over the documents (default 2; ignored with --steps).") var epochs: Int?
    @Option(parsing: .unconditional, help: "Optimizer steps (default: epochs × ⌈documents / batch size⌉).") var steps: Int?
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate (default 2e-5).") var learningRate: Double?
    @Option(name: .long, parsing: .unconditional, help: "Documents per step (default \(UpdateConfig().batchSize)).") var batchSize: Int?
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document, [CLS] and [SEP] included (default 256).") var maxLength: Int?
    @Option(parsing: .unconditional, help: "Seed of the shuffles and crops (default 0).") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Share of the steps spent warming up the learning rate (default 0.1).") var warmup: Double?
    @Option(name: .long, parsing: .unconditional, help: "AdamW weight decay (default 0.01).") var weightDecay: Double?
    @Option(name: .long, parsing: .unconditional, help: "Clip the gradient's global L2 norm to this (default 1.0).") var maxGradNorm: Double?
    @Option(parsing: .unconditional, help: "InfoNCE temperature τ (default 0.05).") var temperature: Double?
    @Option(name: .long, parsing: .unconditional, help: "Smallest share of a document's tokens in its query crop (default 0.1).") var cropMin: Double?
    @Option(name: .long, parsing: .unconditional, help: "Largest share of a document's tokens in its query crop (default 0.5).") var cropMax: Double?
    @Option(help: "Batches: neighbours (near neighbours together: hard in-batch negatives; default) or random (a seeded shuffle, the authors' recipe).")
    var batching: UpdateBatching?
    @Option(help: "Positive of a query crop: rest (the document with the crop cut out: the inverse cloze task; default) or document (the whole document, the authors' task).")
    var positive: UpdatePositive?
    @Option(help: "Known documents to mix into every batch (a replay buffer): a BEIR folder or a JSONL file of documents.")
    var replay: String?
    @Option(name: .long, parsing: .unconditional, help: "Share of each batch given to --replay documents (default 0.25).") var replayShare: Double?
    @Option(name: .long, parsing: .unconditional, help: "Pull toward the starting weights after every step: θ ← θ − lr·anchor·(θ − θ₀) (an L2-SP regulariser against forgetting; default 0, none).") var anchor: Double?
    @Option(parsing: .unconditional, help: "Training-mode hidden dropout p on the embeddings' and each layer's attention and feed-forward outputs (default 0, none).") var dropout: Double?
    @Option(name: .long, parsing: .unconditional, help: "Save the resume state every N steps (default 20).") var saveEvery: Int = 20
    @Flag(help: "Discard a saved state or finished update in OUT and start over.") var restart = false
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    static let vocabulary = CommandVocabulary(
        resumeHint: "rerun with the same settings to resume, or start over (--restart)")

    func validate() throws {
        if steps != nil && epochs != nil { throw OptionError("use --epochs or --steps, not both") }
        guard saveEvery >= 1 else { throw OptionError("--save-every must be at least 1") }
        if replayShare != nil && replay == nil { throw OptionError("--replay-share needs --replay") }
        do { try config.validate() } catch let e as GradNormIRError {
            throw OptionError("update: " + e.description)
        }
    }

    var config: UpdateConfig {
        var c = UpdateConfig()
        c.steps = steps
        if let epochs { c.epochs = epochs }
        if let learningRate { c.learningRate = learningRate }
        if let batchSize { c.batchSize = batchSize }
        if let maxLength { c.maxLength = maxLength }
        if let seed { c.seed = seed }
        if let warmup { c.warmupFraction = warmup }
        if let weightDecay { c.weightDecay = weightDecay }
        if let maxGradNorm { c.maxGradNorm = maxGradNorm }
        if let temperature { c.temperature = temperature }
        if let cropMin { c.cropMin = cropMin }
        if let cropMax { c.cropMax = cropMax }
        if let batching { c.batching = batching }
        if let positive { c.positive = positive }
        if let replayShare { c.replayShare = replayShare }
        if let anchor { c.anchor = anchor }
        if let dropout { c.dropout = dropout }
        return c
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let config = self.config
            let fm = FileManager.default
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: out, isDirectory: &isDir), !isDir.boolValue {
                throw GradNormIRError.io(path: out, reason: "is a file; --out must be a folder (new or from an earlier update)")
            }
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("update: skipped \(skipped) bad line(s) of \(corpus)") }
            let texts = docs.map(\.fullText)
            var replayTexts: [String] = []
            if let replay {
                let (known, skippedKnown) = try BEIRDataset.loadCorpus(path: replay, onBadLine: onBadLine)
                if skippedKnown > 0 { note("update: skipped \(skippedKnown) bad line(s) of \(replay)") }
                replayTexts = known.map(\.fullText)
            }
            let model = try options.load()
            if samePath(out, model.checkpoint.folder) {
                throw GradNormIRError.invalidInput("--out \(out) is the model's own folder; write the updated model to another folder")
            }
            let stateFolder = URL(fileURLWithPath: out).appendingPathComponent(".update-state").path
            let summaryPath = URL(fileURLWithPath: out).appendingPathComponent("update.json").path
            // Everything that can be refused is checked before the output is created: a fresh
            // update's trainer (settings, length, at least two usable documents) is built first.
            var fresh: UpdateTrainer?
            if restart || !fm.fileExists(atPath: URL(fileURLWithPath: stateFolder).appendingPathComponent("state.safetensors").path) {
                fresh = try UpdateTrainer(retriever: model, documents: texts, replay: replayTexts, config: config)
            } else {
                _ = try model.validatedMaxLength(config.maxLength)
            }
            do { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
                throw GradNormIRError.io(path: out, reason: "cannot create the folder: \(error.localizedDescription)")
            }
            let lock = try OutputLock(path: OutputLock.path(forFolder: out))
            defer { withExtendedLifetime(lock) {} }
            if restart {
                try? fm.removeItem(atPath: stateFolder)
                try? fm.removeItem(atPath: summaryPath)
            }
            // Temporary files of killed runs (each atomic write goes through `<name>.tmp-<pid>`).
            for folder in [out, stateFolder] {
                for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] where name.contains(".tmp-") {
                    try? fm.removeItem(atPath: URL(fileURLWithPath: folder).appendingPathComponent(name).path)
                }
            }

            let trainer: UpdateTrainer
            if let resumed = try UpdateTrainer.resume(folder: stateFolder, retriever: model, documents: texts,
                                                      replay: replayTexts, config: config) {
                trainer = resumed
                note("update: resuming after step \(trainer.step) of \(trainer.totalSteps)")
            } else {
                let fresh = try fresh ?? UpdateTrainer(retriever: model, documents: texts, replay: replayTexts, config: config)
                if fm.fileExists(atPath: summaryPath) {
                    let done = try? JSONDecoder().decode(UpdateSummary.self, from: Data(contentsOf: URL(fileURLWithPath: summaryPath)))
                    if let s = done, s.config == config, s.corpusFingerprint == fresh.corpusFingerprint,
                       s.modelFingerprint == fresh.modelFingerprint, s.steps == s.totalSteps {
                        note("update: \(out) already holds this update (\(s.steps) steps); --restart runs it again")
                        return
                    }
                    throw GradNormIRError.invalidInput(
                        "\(out) holds an update with other settings, corpus or model (see its update.json); "
                        + "use another --out, or --restart to overwrite it")
                }
                if !restart, fm.fileExists(atPath: URL(fileURLWithPath: out).appendingPathComponent("model.safetensors").path) {
                    throw GradNormIRError.invalidInput(
                        "\(out) already holds a model that no update of this command wrote; use another --out, or --restart to overwrite it")
                }
                trainer = fresh
            }
            if trainer.contents.count < docs.count {
                note("update: \(docs.count - trainer.contents.count) document(s) have no tokens and are left out")
            }
            let mix = trainer.replaySlots > 0
                ? " (\(trainer.newPerBatch) new + \(trainer.replaySlots) of \(trainer.replayContents.count) replay documents)" : ""
            note("update: \(trainer.contents.count) documents, \(trainer.totalSteps) steps of \(config.batchSize)\(mix), "
                 + "peak lr \(config.learningRate), \(BLAS.engineThreads) thread(s)")

            let isTerminal = isatty(STDERR_FILENO) != 0
            var lastPrint = Date.distantPast
            let runStart = Date(), firstStep = trainer.step
            var docsDone = 0
            while !trainer.isFinished {
                let p = trainer.runStep()
                docsDone += p.documents
                if p.step % saveEvery == 0 && !trainer.isFinished { try trainer.saveState(folder: stateFolder) }
                let now = Date()
                if p.step == firstStep + 1 || trainer.isFinished || now.timeIntervalSince(lastPrint) >= (isTerminal ? 1 : 5) {
                    lastPrint = now
                    let elapsed = now.timeIntervalSince(runStart)
                    let rate = Double(docsDone) / max(elapsed, 1e-9)
                    let eta = Double(trainer.totalSteps - p.step) * elapsed / Double(max(1, p.step - firstStep))
                    note(String(format: "update: step %d/%d  loss %.4f  grad norm %.3f  lr %.3g  %.2f docs/s  ETA %@",
                                p.step, p.totalSteps, p.loss, p.gradNorm, p.learningRate, rate, formatDuration(eta)))
                }
            }
            // Final state first (a kill during the saves below resumes with nothing left to train),
            // then the model, then the summary; the state goes last.
            try trainer.saveState(folder: stateFolder)
            let updated = try trainer.retriever(base: model)
            try updated.checkpoint.save(to: out)
            let summary = trainer.summary()
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let json = try enc.encode(summary)
            try writeFileAtomically(summaryPath, json + Data("\n".utf8))
            try? fm.removeItem(atPath: stateFolder)
            note(String(format: "update: %d steps in %.1f s (%.0f tokens/s); mean loss %.4f → %.4f (first/last %d steps); model saved to %@",
                        summary.steps, summary.seconds, summary.tokensPerSecond, summary.meanLossFirst,
                        summary.meanLossLast, summary.lossWindow, out))
        }
    }
}
