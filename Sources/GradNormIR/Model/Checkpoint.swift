import Foundation
import TransformerLite

/// A Hugging Face BERT-family checkpoint folder, loaded into the engine's flat parameter buffer.
///
/// The folder layout is the one `sentence-transformers` saves (all-MiniLM-L6-v2, bge, e5, gte,
/// contriever, …):
///
///     config.json                  BertConfig: sizes, activation, position embedding type
///     model.safetensors            the weights (HF names, optionally with a `bert.` prefix)
///     vocab.txt                    WordPiece vocabulary, one token a line (id = line − 1)
///     modules.json                 optional: sentence-transformers module list
///     <pooling path>/config.json   the `Pooling` module's settings (mean or CLS)
///     sentence_bert_config.json    optional: `max_seq_length`, `do_lower_case`
///     tokenizer_config.json        optional: `do_lower_case` (default true), `strip_accents`
///
/// Loading validates everything and never touches the network: every tensor of
/// `ParameterLayout(config:)` must be present with exactly its shape, no other tensor may be
/// present (apart from the ignored `embeddings.position_ids`, `pooler.*` and `cls.*`), and no
/// parameter may be NaN or infinite. Every failure is a `GradNormIRError` naming the file and,
/// where there is one, the tensor.
public struct Checkpoint: Sendable {
    public let config: EncoderConfig
    public let layout: ParameterLayout
    /// All parameters, carved by `layout` (`layout.count` floats).
    public let parameters: FlatBuffer
    /// The folder the checkpoint was loaded from.
    public let folder: String
    /// `max_seq_length` from `sentence_bert_config.json`, if the file has one.
    public let maxSeqLength: Int?
    /// Whether the tokenizer lowercases: `do_lower_case` of `tokenizer_config.json` (default true),
    /// or-ed with `do_lower_case` of `sentence_bert_config.json` (sentence-transformers then
    /// lowercases the text before the tokenizer sees it).
    public let lowercase: Bool
    /// `strip_accents` of `tokenizer_config.json`; nil (absent or null) means "follow `lowercase`",
    /// as in Hugging Face's BertTokenizer.
    public let stripAccents: Bool?
    /// Path of `vocab.txt`; its line count equals `config.vocabSize`.
    public let vocabFile: String

    /// Loads and validates the checkpoint in `folder`.
    ///
    /// Pooling: taken from the `sentence_transformers.models.Pooling` module listed in
    /// `modules.json` (mean or CLS, exactly one mode); `normalize` is whether a
    /// `sentence_transformers.models.Normalize` module is listed. Without `modules.json` the
    /// folder is a plain HF `BertModel`, and we choose mean pooling without normalisation (what
    /// mean-pooled retrievers such as contriever use); for a CLS retriever, add a `modules.json`.
    public static func load(folder: String) throws -> Checkpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw GradNormIRError.fileNotFound(path: folder)
        }
        guard isDir.boolValue else {
            throw GradNormIRError.io(path: folder, reason: "is a file, expected a checkpoint folder")
        }
        let dir = URL(fileURLWithPath: folder, isDirectory: true)
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

        // 1. config.json → sizes (pooling filled in below).
        let configPath = file("config.json")
        let hf = try readJSON(HFConfig.self, configPath)
        var config = try hf.encoderConfig(path: configPath)

        // 2. Pooling and normalisation from the sentence-transformers modules.
        let (pooling, normalize) = try readPooling(folder: dir, hiddenSize: config.hiddenSize)
        config.pooling = pooling
        config.normalize = normalize

        // 3. Sequence length and tokenizer flags.
        var maxSeqLength: Int?
        var sbertLowercase = false
        let sbertPath = file("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: sbertPath) {
            let sbert = try readJSON(SBertConfig.self, sbertPath)
            if let m = sbert.maxSeqLength {
                guard m > 0, m <= config.maxPositions else {
                    throw GradNormIRError.checkpoint(path: sbertPath, tensor: nil,
                        reason: "max_seq_length \(m) must be in 1...\(config.maxPositions) (max_position_embeddings of config.json)")
                }
                maxSeqLength = m
            }
            sbertLowercase = sbert.doLowerCase ?? false
        }
        var lowercase = true
        var stripAccents: Bool?
        let tokPath = file("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: tokPath) {
            let tok = try readJSON(TokenizerConfig.self, tokPath)
            lowercase = tok.doLowerCase ?? true
            stripAccents = tok.stripAccents
        }
        lowercase = lowercase || sbertLowercase

        // 4. vocab.txt: only its line count is checked here.
        let vocabFile = file("vocab.txt")
        let vocabLines = try countLines(vocabFile)
        guard vocabLines == config.vocabSize else {
            throw GradNormIRError.tokenizer(path: vocabFile,
                reason: "has \(vocabLines) lines but config.json vocab_size is \(config.vocabSize)")
        }

        // 5. The weights.
        let layout = ParameterLayout(config: config)
        let parameters = try loadWeights(path: file("model.safetensors"), layout: layout)

        return Checkpoint(config: config, layout: layout, parameters: parameters, folder: folder,
                          maxSeqLength: maxSeqLength, lowercase: lowercase, stripAccents: stripAccents,
                          vocabFile: vocabFile)
    }

    /// The same checkpoint with another sentence pooling (e.g. CLS instead of the mean the folder
    /// specifies), sharing the parameters: a retriever configuration to compare, not a different
    /// model. The parameter layout does not depend on pooling.
    public func withPooling(_ pooling: EncoderConfig.Pooling) -> Checkpoint {
        var c = config
        c.pooling = pooling
        return Checkpoint(config: c, layout: ParameterLayout(config: c), parameters: parameters, folder: folder,
                          maxSeqLength: maxSeqLength, lowercase: lowercase, stripAccents: stripAccents,
                          vocabFile: vocabFile)
    }

    /// Maps every tensor of the file to its layout slot (names normalised), checks that the two
    /// sets match with identical shapes, and only then allocates and copies.
    private static func loadWeights(path: String, layout: ParameterLayout) throws -> FlatBuffer {
        if !FileManager.default.fileExists(atPath: path) {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            for other in ["pytorch_model.bin", "model.safetensors.index.json"]
            where FileManager.default.fileExists(atPath: folder.appendingPathComponent(other).path) {
                throw GradNormIRError.checkpoint(path: path, tensor: nil,
                    reason: "missing; the folder has \(other), but only a single model.safetensors file is supported")
            }
            throw GradNormIRError.fileNotFound(path: path)
        }
        let file = try SafeTensorsFile(path: path)
        let slots = Dictionary(uniqueKeysWithValues: layout.tensors.map { ($0.name, $0) })

        var plan: [(fileName: String, slot: TensorSlot)] = []
        var loadedFrom: [String: String] = [:]  // slot name → file tensor name
        for name in file.tensorNames {
            guard let slotName = canonicalName(name) else { continue }  // ignored tensor
            guard let slot = slots[slotName] else {
                throw GradNormIRError.checkpoint(path: path, tensor: name,
                    reason: "unexpected tensor: not part of a \(layout.config.numLayers)-layer BERT encoder with this config.json")
            }
            if let previous = loadedFrom[slotName] {
                throw GradNormIRError.checkpoint(path: path, tensor: name,
                    reason: "maps to '\(slotName)', which '\(previous)' already provides")
            }
            let info = file.info(name)!
            guard info.shape == slot.shape else {
                throw GradNormIRError.checkpoint(path: path, tensor: name,
                    reason: "shape mismatch: expected \(slot.shape), found \(info.shape)")
            }
            guard info.dtype.convertsToFloat else {
                throw GradNormIRError.checkpoint(path: path, tensor: name,
                    reason: "has dtype \(info.dtype.rawValue); a floating dtype (F32, F16, BF16, F64) is required")
            }
            loadedFrom[slotName] = name
            plan.append((name, slot))
        }
        let missing = layout.tensors.filter { loadedFrom[$0.name] == nil }
        if let first = missing.first {
            let more = missing.count > 1 ? " (and \(missing.count - 1) more)" : ""
            throw GradNormIRError.checkpoint(path: path, tensor: first.name,
                reason: "missing tensor of shape \(first.shape)\(more)")
        }

        let parameters = FlatBuffer(count: layout.count)
        try parameters.withUnsafeMutableBufferPointer { all in
            for (name, slot) in plan {
                let dst = UnsafeMutableBufferPointer(rebasing: all[slot.offset ..< slot.offset + slot.count])
                try file.copyFloats(name, into: dst)
                if let bad = dst.firstIndex(where: { !$0.isFinite }) {
                    throw GradNormIRError.checkpoint(path: path, tensor: name,
                        reason: "element \(bad) is \(dst[bad]); parameters must be finite")
                }
            }
        }
        return parameters
    }

    /// The layout name of a checkpoint tensor, or nil for a tensor the encoder ignores.
    /// Strips a `bert.` prefix, drops `embeddings.position_ids`, `pooler.*` and the pre-training
    /// heads `cls.*`, and renames the TF-era `LayerNorm.gamma`/`.beta` to `.weight`/`.bias`.
    static func canonicalName(_ name: String) -> String? {
        if name.hasPrefix("cls.") { return nil }
        var n = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
        if n == "embeddings.position_ids" || n.hasPrefix("pooler.") { return nil }
        if n.hasSuffix("LayerNorm.gamma") { n = String(n.dropLast(5)) + "weight" }
        else if n.hasSuffix("LayerNorm.beta") { n = String(n.dropLast(4)) + "bias" }
        return n
    }

    // MARK: - Pooling (sentence-transformers modules)

    static func readPooling(folder: URL, hiddenSize: Int) throws -> (EncoderConfig.Pooling, Bool) {
        let modulesPath = folder.appendingPathComponent("modules.json").path
        guard FileManager.default.fileExists(atPath: modulesPath) else {
            return (.mean, false)  // plain HF folder: documented choice, see `load(folder:)`
        }
        let modules = try readJSON([Module].self, modulesPath)
        var poolingPath: String?
        var normalize = false
        for m in modules {
            switch m.type {
            case "sentence_transformers.models.Transformer":
                break
            case "sentence_transformers.models.Pooling":
                guard poolingPath == nil else {
                    throw GradNormIRError.checkpoint(path: modulesPath, tensor: nil, reason: "lists more than one Pooling module")
                }
                poolingPath = m.path
            case "sentence_transformers.models.Normalize":
                normalize = true
            default:
                throw GradNormIRError.checkpoint(path: modulesPath, tensor: nil,
                    reason: "module '\(m.type)' is not supported (only Transformer, Pooling and Normalize are implemented)")
            }
        }
        guard let sub = poolingPath else {
            throw GradNormIRError.checkpoint(path: modulesPath, tensor: nil,
                reason: "lists no sentence_transformers.models.Pooling module")
        }
        let configPath = folder.appendingPathComponent(sub).appendingPathComponent("config.json").path
        let pool = try readJSON(PoolingConfig.self, configPath)
        if let dim = pool.wordEmbeddingDimension, dim != hiddenSize {
            throw GradNormIRError.checkpoint(path: configPath, tensor: nil,
                reason: "word_embedding_dimension \(dim) differs from hidden_size \(hiddenSize) in config.json")
        }
        let enabled = pool.enabledModes
        guard enabled.count == 1 else {
            let listed = enabled.isEmpty ? "none" : enabled.joined(separator: ", ")
            throw GradNormIRError.checkpoint(path: configPath, tensor: nil,
                reason: "exactly one pooling mode must be enabled (mean_tokens or cls_token); enabled: \(listed)")
        }
        switch enabled[0] {
        case "mean_tokens": return (.mean, normalize)
        case "cls_token": return (.cls, normalize)
        default:
            throw GradNormIRError.checkpoint(path: configPath, tensor: nil,
                reason: "pooling mode '\(enabled[0])' is not supported (only mean_tokens and cls_token)")
        }
    }
}

