/// One named tensor inside the flat parameter buffer.
public struct TensorSlot: Sendable, Equatable {
    /// Hugging Face name, e.g. `encoder.layer.0.attention.self.query.weight`.
    public let name: String
    public let shape: [Int]
    /// Offset in floats from the start of the flat buffer.
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Offsets of the embedding block in the flat buffer.
public struct EmbeddingOffsets: Sendable, Equatable {
    public let word: Int        // (V, C)
    public let position: Int    // (P, C)
    public let tokenType: Int   // (TT, C)
    public let lnWeight: Int    // (C)
    public let lnBias: Int      // (C)
}

/// Offsets of one transformer layer in the flat buffer.
///
/// The query, key and value weights are stored back to back, so `qkvWeight` is one (3C, C)
/// matrix and `qkvBias` one (3C) vector: the projection is a single product.
public struct LayerOffsets: Sendable, Equatable {
    public let qkvWeight: Int     // (3C, C) = query ‖ key ‖ value, each (C, C)
    public let qkvBias: Int       // (3C)
    public let attnOutWeight: Int // (C, C)
    public let attnOutBias: Int   // (C)
    public let ln1Weight: Int     // (C)
    public let ln1Bias: Int       // (C)
    public let ffnInWeight: Int   // (I, C)
    public let ffnInBias: Int     // (I)
    public let ffnOutWeight: Int  // (C, I)
    public let ffnOutBias: Int    // (C)
    public let ln2Weight: Int     // (C)
    public let ln2Bias: Int       // (C)
}

/// The size table that carves one flat parameter buffer (and its same-shaped gradient buffer)
/// into the tensors of a BERT encoder (STYLE.md §3). The pooler is not part of it: the
/// encoder's output is the pooled last layer, never the pooler's.
public struct ParameterLayout: Sendable, Equatable {
    public let config: EncoderConfig
    public let tensors: [TensorSlot]
    public let embeddings: EmbeddingOffsets
    public let layers: [LayerOffsets]
    /// Total number of floats.
    public let count: Int

    public init(config c: EncoderConfig) {
        precondition(c.hiddenSize > 0 && c.numHeads > 0 && c.hiddenSize % c.numHeads == 0,
                     "hidden size must be a positive multiple of the head count")
        let C = c.hiddenSize, I = c.intermediateSize
        var slots: [TensorSlot] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let o = offset
            slots.append(TensorSlot(name: name, shape: shape, offset: o))
            offset += shape.reduce(1, *)
            return o
        }
        let emb = EmbeddingOffsets(
            word: add("embeddings.word_embeddings.weight", [c.vocabSize, C]),
            position: add("embeddings.position_embeddings.weight", [c.maxPositions, C]),
            tokenType: add("embeddings.token_type_embeddings.weight", [c.typeVocabSize, C]),
            lnWeight: add("embeddings.LayerNorm.weight", [C]),
            lnBias: add("embeddings.LayerNorm.bias", [C]))
        var layers: [LayerOffsets] = []
        for l in 0..<c.numLayers {
            let p = "encoder.layer.\(l)."
            let qw = add(p + "attention.self.query.weight", [C, C])
            _ = add(p + "attention.self.key.weight", [C, C])
            _ = add(p + "attention.self.value.weight", [C, C])
            let qb = add(p + "attention.self.query.bias", [C])
            _ = add(p + "attention.self.key.bias", [C])
            _ = add(p + "attention.self.value.bias", [C])
            layers.append(LayerOffsets(
                qkvWeight: qw, qkvBias: qb,
                attnOutWeight: add(p + "attention.output.dense.weight", [C, C]),
                attnOutBias: add(p + "attention.output.dense.bias", [C]),
                ln1Weight: add(p + "attention.output.LayerNorm.weight", [C]),
                ln1Bias: add(p + "attention.output.LayerNorm.bias", [C]),
                ffnInWeight: add(p + "intermediate.dense.weight", [I, C]),
                ffnInBias: add(p + "intermediate.dense.bias", [I]),
                ffnOutWeight: add(p + "output.dense.weight", [C, I]),
                ffnOutBias: add(p + "output.dense.bias", [C]),
                ln2Weight: add(p + "output.LayerNorm.weight", [C]),
                ln2Bias: add(p + "output.LayerNorm.bias", [C])))
        }
        self.config = c
        self.tensors = slots
        self.embeddings = emb
        self.layers = layers
        self.count = offset
    }

    /// The slot with this Hugging Face name, if the layout has one.
    public func slot(named name: String) -> TensorSlot? {
        tensors.first { $0.name == name }
    }
}
