/// Hyper-parameters of a BERT-family encoder, as read from a Hugging Face `config.json`
/// plus the sentence-transformers pooling settings.
public struct EncoderConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var pooling: Pooling
    /// Whether pooled embeddings are L2-normalised (sentence-transformers `Normalize` module).
    public var normalize: Bool

    public enum Pooling: String, Codable, Sendable {
        /// Mean of the token states over the sequence (every token of a packed sequence is real).
        case mean
        /// The state of the first token (`[CLS]`).
        case cls
    }

    public init(vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12,
                pooling: Pooling = .mean, normalize: Bool = true) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.pooling = pooling
        self.normalize = normalize
    }
}
