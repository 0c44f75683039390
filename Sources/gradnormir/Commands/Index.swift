import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR
import TransformerLite

struct Index: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed a corpus once and save its embeddings, for score, evaluate and recall to reuse (--index).",
        discussion: """
            Writes OUT/embeddings.safetensors (one F32 matrix, a row per document in corpus order), OUT/ids.jsonl \
            and OUT/index.json (fingerprints of the corpus and of the model, the max length, the size, the engine \
            version). The rows are the bits `score` would compute itself with the same --threads. Interrupted, \
            rerun the same command: finished chunks are kept. An OUT built from another corpus, model or max \
            length is refused (--restart rebuilds it); commands given --index refuse such an index the same way.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output folder of the index.") var out: String
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per document, special tokens included (default: the model's max_seq_length; use the length the index's users will use).")
    var maxLength: Int?
    @Flag(help: "Discard an index in OUT (of any inputs) and build it again.") var restart = false
    @Option(help: "Build only shard K of N (K/N): the chunks of \(Retriever.corpusChunk) documents c with c mod N = K − 1; `gradnormir merge` joins the N shard folders into the whole index.")
    var shard: String?
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    static let vocabulary = CommandVocabulary(resumeHint: "use another --out, or --restart to rebuild it")

    func validate() throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isFolder), !isFolder.boolValue {
            throw OptionError("--out \(out): exists and is not a folder")
        }
        if let shard {
            do { _ = try Shard(parsing: shard) } catch GradNormIRError.invalidSetting(_, let reason) {
                throw OptionError("--shard \(reason)")
            }
        }
    }

    func run() throws {
        try reportingErrors(Self.vocabulary) {
            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("index: skipped \(skipped) bad line(s) of \(corpus)") }
            guard !docs.isEmpty else { throw GradNormIRError.invalidInput("\(corpus): no documents") }
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let lock = try OutputLock(path: OutputLock.path(forFolder: out))
            defer { withExtendedLifetime(lock) {} }
            let started = Date()
            var progress = ProgressReporter(label: "embedding", total: docs.count)
            var first: Int?
            let embedded = try EmbeddingIndex.build(documents: docs, corpus: corpus, retriever: model, maxLength: m,
                                                    folder: out, startOver: restart,
                                                    shard: try shard.map { try Shard(parsing: $0) }) { done, total in
                if first == nil {
                    first = done
                    progress = ProgressReporter(label: "embedding", total: total, alreadyDone: done)
                    if done > 0 && done < total { note("index: resuming after \(done) of \(total) documents") }
                }
                progress.update(done, force: done == total)
            }
            if embedded == 0 {
                note("index: \(out) already holds the index of these \(docs.count) documents" + (shard.map { " (shard \($0))" } ?? ""))
                return
            }
            let secs = Date().timeIntervalSince(started)
            note("index: \(embedded) documents embedded in \(String(format: "%.1f", secs)) s "
                 + "(\(String(format: "%.1f", Double(embedded) / max(secs, 1e-9))) documents/s, \(BLAS.engineThreads) thread(s), "
                 + "max length \(m)); \(docs.count) rows in \(out)")
        }
    }
}
