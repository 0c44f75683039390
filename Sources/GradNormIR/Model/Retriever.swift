import Foundation
import TransformerLite

/// A dense retriever ready to use: a checkpoint's parameters, its tokenizer and an encoder.
///
/// ```swift
/// let model = try Retriever.load(folder: "models/all-MiniLM-L6-v2")
/// let e = try model.embed(["hello world", "The quick brown fox"])   // [[Float]], L2-normalised
/// ```
/// Not thread-safe (it owns one encoder workspace): use one `Retriever` per thread, or
/// `makeEncoder()` to get more encoders over the same parameters.
public final class Retriever {
    public let checkpoint: Checkpoint
    public let tokenizer: BertTokenizer
    public let encoder: Encoder
    public var config: EncoderConfig { checkpoint.config }
    /// A fingerprint of everything that decides this retriever's embeddings (weights, encoder
    /// configuration and pooling, vocabulary and tokenizer settings): what a resumed run compares
    /// instead of a folder path. Computed on first use (a pass over the weights).
    public private(set) lazy var fingerprint: String = Fingerprint.of(retriever: self)

    public init(checkpoint: Checkpoint, tokenizer: BertTokenizer) throws {
        guard tokenizer.vocabularySize == checkpoint.config.vocabSize else {
            throw GradNormIRError.tokenizer(
                path: checkpoint.vocabFile,
                reason: "vocabulary has \(tokenizer.vocabularySize) tokens but the model expects \(checkpoint.config.vocabSize)")
        }
        self.checkpoint = checkpoint
        self.tokenizer = tokenizer
        self.encoder = Encoder(layout: checkpoint.layout, parameters: checkpoint.parameters)
    }

    /// Loads a Hugging Face BERT-family folder (config.json, vocab.txt, model.safetensors and the
    /// sentence-transformers pooling files).
    public static func load(folder: String) throws -> Retriever {
        let ckpt = try Checkpoint.load(folder: folder)
        let tok = try BertTokenizer.load(vocabFile: ckpt.vocabFile, lowercase: ckpt.lowercase,
                                         stripAccents: ckpt.stripAccents)
        return try Retriever(checkpoint: ckpt, tokenizer: tok)
    }

    /// The same model with another sentence pooling (parameters and tokenizer shared); see
    /// `Checkpoint.withPooling(_:)`.
    public func withPooling(_ pooling: EncoderConfig.Pooling) throws -> Retriever {
        pooling == config.pooling ? self : try Retriever(checkpoint: checkpoint.withPooling(pooling), tokenizer: tokenizer)
    }

    /// Another encoder over the same (shared, read-only) parameters, for another thread.
    public func makeEncoder() -> Encoder {
        Encoder(layout: checkpoint.layout, parameters: checkpoint.parameters)
    }

    /// The sequence length used when none is given: the model's `max_seq_length`
    /// (sentence-transformers) if it has one, else its position-table size.
    public var defaultMaxLength: Int { checkpoint.maxSeqLength ?? config.maxPositions }

    /// Checks a user-supplied maximum length (special tokens included).
    public func validatedMaxLength(_ maxLength: Int?) throws -> Int {
        let m = maxLength ?? defaultMaxLength
        guard m >= 2, m <= config.maxPositions else {
            throw GradNormIRError.invalidInput(
                "max length \(m) is outside 2...\(config.maxPositions) (the model's position table)")
        }
        return m
    }

    /// Token ids of `text` with `[CLS]`/`[SEP]`, truncated to `maxLength` (default: `defaultMaxLength`).
    public func tokenize(_ text: String, maxLength: Int? = nil) throws -> [Int] {
        tokenizer.encode(text, maxLength: try validatedMaxLength(maxLength))
    }

    /// Embeds texts: tokenise, truncate, encode in packed batches of at most `batchTokens` tokens,
    /// pool and (if the model says so) L2-normalise. Output order follows input order.
    public func embed(_ texts: [String], maxLength: Int? = nil, batchTokens: Int = 16_384) throws -> [[Float]] {
        let m = try validatedMaxLength(maxLength)
        return embed(ids: texts.map { tokenizer.encode($0, maxLength: m) }, batchTokens: batchTokens)
    }

    /// Embeds already tokenised sequences (each 1...maxPositions ids, all < vocabulary size).
    public func embed(ids: [[Int]], batchTokens: Int = 16_384) -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(ids.count)
        var start = 0
        while start < ids.count {
            var end = start, tokens = 0
            while end < ids.count && (end == start || tokens + ids[end].count <= batchTokens) {
                tokens += ids[end].count
                end += 1
            }
            out += encoder.embed(Array(ids[start..<end]))
            start = end
        }
        return out
    }

    /// Embeddings for search: `embed(ids:)`, L2-normalised here when the model does not normalise
    /// itself (METHOD.md step 1: the index holds normalised embeddings, so inner product is cosine).
    public func searchEmbeddings(ids: [[Int]], batchTokens: Int = 16_384) -> [[Float]] {
        let e = embed(ids: ids, batchTokens: batchTokens)
        guard !config.normalize else { return e }
        return e.map { v in
            var row = v
            row.withUnsafeMutableBufferPointer { l2Normalize($0) }
            return row
        }
    }

    /// Documents per embedding call when a whole corpus is embedded (`corpusEmbeddings`).
    public static let corpusChunk = 64

    /// The search embeddings of a corpus, `corpusChunk` documents per `searchEmbeddings(ids:)`
    /// call, `progress(done)` after each. The one way every command and the persisted index
    /// embed a corpus, so their embeddings are the same bits (the encoder packs each chunk into
    /// one batch, and some BLAS kernels round a row by the rows beside it).
    public func corpusEmbeddings(ids: [[Int]], progress: ((Int) -> Void)? = nil) -> [[Float]] {
        var embeddings: [[Float]] = []
        embeddings.reserveCapacity(ids.count)
        var start = 0
        while start < ids.count {
            let end = min(ids.count, start + Self.corpusChunk)
            embeddings += searchEmbeddings(ids: Array(ids[start..<end]))
            start = end
            progress?(start)
        }
        return embeddings
    }

    /// `searchEmbeddings(ids:)` of texts, tokenised and truncated to `maxLength`.
    public func searchEmbeddings(_ texts: [String], maxLength: Int? = nil) throws -> [[Float]] {
        let m = try validatedMaxLength(maxLength)
        return searchEmbeddings(ids: texts.map { tokenizer.encode($0, maxLength: m) })
    }

    /// The model folder to use when none is named: `override` when non-empty (a program passes
    /// its environment's choice, e.g. `$GRADNORMIR_MODEL`), else `models/all-MiniLM-L6-v2` in
    /// `currentDirectory`, else the same path beside the package that built the program at
    /// `programPath` (so `swift run` and `.build/release/gradnormir` find the model fetched by
    /// `make setup`), else the path in `currentDirectory` (loading it then names it).
    public static func defaultModelFolder(override: String?, programPath: String?,
                                          currentDirectory: String = FileManager.default.currentDirectoryPath) -> String {
        let fm = FileManager.default
        if let override, !override.isEmpty { return override }
        let rel = "models/all-MiniLM-L6-v2"
        let cwd = URL(fileURLWithPath: currentDirectory).appendingPathComponent(rel)
        if fm.fileExists(atPath: cwd.path) { return cwd.path }
        // <root>/.build/<triple>/<config>/<program>: look up to four levels above the program.
        var dir = URL(fileURLWithPath: programPath ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent(rel)
            if fm.fileExists(atPath: candidate.path) { return candidate.path }
        }
        return cwd.path
    }
}
