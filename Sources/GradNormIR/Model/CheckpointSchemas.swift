import Foundation
import TransformerLite

// MARK: - JSON documents

/// The parts of a Hugging Face BERT `config.json` the encoder needs.
struct HFConfig: Decodable {
    let modelType: String?
    let vocabSize: Int
    let hiddenSize: Int
    let numHiddenLayers: Int
    let numAttentionHeads: Int
    let intermediateSize: Int
    let maxPositionEmbeddings: Int
    let typeVocabSize: Int?
    let layerNormEps: Double?
    let hiddenAct: String?
    let positionEmbeddingType: String?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case hiddenAct = "hidden_act"
        case positionEmbeddingType = "position_embedding_type"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        vocabSize = try c.decodeInteger(forKey: .vocabSize)
        hiddenSize = try c.decodeInteger(forKey: .hiddenSize)
        numHiddenLayers = try c.decodeInteger(forKey: .numHiddenLayers)
        numAttentionHeads = try c.decodeInteger(forKey: .numAttentionHeads)
        intermediateSize = try c.decodeInteger(forKey: .intermediateSize)
        maxPositionEmbeddings = try c.decodeInteger(forKey: .maxPositionEmbeddings)
        typeVocabSize = try c.decodeIntegerIfPresent(forKey: .typeVocabSize)
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct)
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType)
    }

    /// Validates the fields and builds the config (pooling left at its default).
    func encoderConfig(path: String) throws -> EncoderConfig {
        func fail(_ reason: String) -> GradNormIRError { .checkpoint(path: path, tensor: nil, reason: reason) }
        switch modelType {
        case nil, "bert":
            break
        case "roberta", "xlm-roberta", "camembert":
            throw fail("model_type '\(modelType!)' is not supported: RoBERTa-family models offset position ids by padding_idx + 1 and use a BPE tokenizer; only BERT (model_type \"bert\") is implemented")
        default:
            throw fail("model_type '\(modelType!)' is not supported; only BERT (model_type \"bert\") is implemented")
        }
        // HF BertConfig defaults: hidden_act "gelu", position_embedding_type "absolute".
        let act = hiddenAct ?? "gelu"
        guard act == "gelu" else {
            throw fail("hidden_act '\(act)' is not supported; only \"gelu\" (exact erf GELU) is implemented")
        }
        let position = positionEmbeddingType ?? "absolute"
        guard position == "absolute" else {
            throw fail("position_embedding_type '\(position)' is not supported; only \"absolute\" is implemented")
        }
        let sizes: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
            ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize ?? 2),
        ]
        for (key, value) in sizes where value <= 0 {
            throw fail("\(key) must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        let eps = layerNormEps ?? 1e-12
        guard eps > 0, eps.isFinite, Float(eps) > 0 else {
            throw fail("layer_norm_eps must be a positive number representable as Float, got \(eps)")
        }
        let config = EncoderConfig(vocabSize: vocabSize, hiddenSize: hiddenSize, numLayers: numHiddenLayers,
                                   numHeads: numAttentionHeads, intermediateSize: intermediateSize,
                                   maxPositions: maxPositionEmbeddings, typeVocabSize: typeVocabSize ?? 2,
                                   layerNormEps: Float(eps), pooling: .mean, normalize: false)
        // ParameterLayout sums these products without overflow checks; a bogus config must
        // fail here rather than trap there.
        guard Self.checkedParameterCount(config) != nil else {
            throw fail("the sizes describe more parameters than can be addressed")
        }
        return config
    }

    /// The layout's parameter count with overflow checks:
    /// (V + P + T)·C + 2C for the embeddings, plus L · (4C² + 2IC + I + 9C) for the layers.
    static func checkedParameterCount(_ c: EncoderConfig) -> Int? {
        func mul(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (p, o) = a.multipliedReportingOverflow(by: b); return o ? nil : p
        }
        func add(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (s, o) = a.addingReportingOverflow(b); return o ? nil : s
        }
        let C = c.hiddenSize, I = c.intermediateSize
        let rows = add(add(c.vocabSize, c.maxPositions), add(c.typeVocabSize, 2))
        let perLayer = add(add(mul(4, mul(C, C)), mul(2, mul(I, C))), add(I, mul(9, C)))
        return add(mul(rows, C), mul(c.numLayers, perLayer))
    }
}

struct Module: Decodable {
    let type: String
    let path: String
}

/// A sentence-transformers `Pooling` config. Every `pooling_mode_*` flag is read, so that a
/// mode this engine does not implement (max, mean_sqrt_len, weightedmean, lasttoken) is an
/// error rather than silently ignored.
struct PoolingConfig: Decodable {
    let wordEmbeddingDimension: Int?
    /// Names of the enabled modes, without the `pooling_mode_` prefix, sorted.
    let enabledModes: [String]

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        wordEmbeddingDimension = try c.decodeIntegerIfPresent(forKey: Key(stringValue: "word_embedding_dimension"))
        var modes: [String] = []
        for key in c.allKeys where key.stringValue.hasPrefix("pooling_mode_") {
            if try c.decodeIfPresent(Bool.self, forKey: key) == true {
                modes.append(String(key.stringValue.dropFirst("pooling_mode_".count)))
            }
        }
        // Newer sentence-transformers may also store the mode as a string.
        if let mode = try c.decodeIfPresent(String.self, forKey: Key(stringValue: "pooling_mode")) {
            let name = ["mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"][mode] ?? mode
            if !modes.contains(name) { modes.append(name) }
        }
        enabledModes = modes.sorted()
    }
}

struct SBertConfig: Decodable {
    let maxSeqLength: Int?
    let doLowerCase: Bool?
    enum CodingKeys: String, CodingKey {
        case maxSeqLength = "max_seq_length"
        case doLowerCase = "do_lower_case"
    }
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxSeqLength = try c.decodeIntegerIfPresent(forKey: .maxSeqLength)
        doLowerCase = try c.decodeIfPresent(Bool.self, forKey: .doLowerCase)
    }
}

struct TokenizerConfig: Decodable {
    let doLowerCase: Bool?
    let stripAccents: Bool?
    enum CodingKeys: String, CodingKey {
        case doLowerCase = "do_lower_case"
        case stripAccents = "strip_accents"
    }
}

/// Reads and decodes the JSON file at `path`; every failure is a `GradNormIRError` naming it
/// (`.fileNotFound`, `.io` for a directory or an unreadable file, `.invalidUTF8`, `.malformedJSON`, …).
func readJSON<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
    let data = try mapFile(path)
    guard String(data: data, encoding: .utf8) != nil else { throw GradNormIRError.invalidUTF8(path: path, line: nil) }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch {
        throw jsonFailure(error, path: path, what: "", json: data)
    }
}

/// Number of lines in a text file: newline characters, plus one if the last line has none.
/// Throws `.fileNotFound`, or `.io` for a directory or an unreadable file.
func countLines(_ path: String) throws -> Int {
    let data = try mapFile(path)
    return data.withUnsafeBytes { raw -> Int in
        var lines = 0
        for b in raw where b == 0x0A { lines += 1 }
        if let last = raw.last, last != 0x0A { lines += 1 }
        return lines
    }
}
