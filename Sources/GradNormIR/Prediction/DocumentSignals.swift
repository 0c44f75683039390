import Foundation
import TransformerLite

/// Query-free signals of how likely a retriever is to miss a document, each computed from the
/// document, the corpus index and the tokenizer alone — no query, no backward pass.
///
/// - Neighbourhood (the corpus index, the document itself left out): `density`, the mean cosine
///   similarity of the document to its `neighbours` nearest documents, and `nearest`, the
///   similarity to the closest one. A document among many close neighbours must beat them all
///   for its queries; a near-duplicate is hard to tell apart.
/// - Tokenizer (the whole text, untruncated): `piecesPerWord`, word pieces per whitespace-separated
///   word — a vocabulary that does not cover a language or a jargon splits its words into many
///   pieces —, `unknownShare` ([UNK] pieces) and `continuationShare` (`##` pieces), each a share
///   of all pieces, and `pieces`, their number.
public struct DocumentSignals: Sendable, Equatable, Codable {
    public var density: Double
    public var nearest: Double
    public var piecesPerWord: Double
    public var unknownShare: Double
    public var continuationShare: Double
    public var pieces: Int

    public init(density: Double, nearest: Double, piecesPerWord: Double, unknownShare: Double,
                continuationShare: Double, pieces: Int) {
        self.density = density
        self.nearest = nearest
        self.piecesPerWord = piecesPerWord
        self.unknownShare = unknownShare
        self.continuationShare = continuationShare
        self.pieces = pieces
    }

    enum CodingKeys: String, CodingKey {
        case density, nearest, piecesPerWord = "pieces_per_word", unknownShare = "unknown_share"
        case continuationShare = "continuation_share", pieces
    }

    /// The tokenizer signals of `text` (the neighbourhood ones are left at 0). A text without
    /// words or pieces has 0 for each share and ratio.
    public static func tokens(of text: String, tokenizer: BertTokenizer) -> DocumentSignals {
        let pieces = tokenizer.tokenize(text)
        let words = text.split(whereSeparator: { $0.isWhitespace }).count
        let unknown = tokenizer.token(of: tokenizer.unkId) ?? "[UNK]"
        let n = Double(max(1, pieces.count))
        return DocumentSignals(
            density: 0, nearest: 0,
            piecesPerWord: words == 0 ? 0 : Double(pieces.count) / Double(words),
            unknownShare: Double(pieces.filter { $0 == unknown }.count) / n,
            continuationShare: Double(pieces.filter { $0.hasPrefix("##") }.count) / n,
            pieces: pieces.count)
    }
}

/// Computes `DocumentSignals` for documents of one corpus from its search embeddings.
public struct SignalExtractor {
    /// Neighbours averaged into `density` (recall@10 is the question, so 10 by default).
    public let neighbours: Int
    let index: VectorIndex
    let texts: [String]
    let tokenizer: BertTokenizer

    /// - Parameters:
    ///   - texts: every document's text (`Document.fullText`), in corpus order.
    ///   - embeddings: their search embeddings (L2-normalised), in the same order.
    ///   - neighbours: at least 1; capped at the corpus size − 1 (a corpus of one document has no
    ///     neighbour and gets density 0).
    public init(texts: [String], embeddings: [[Float]], tokenizer: BertTokenizer, neighbours: Int = 10) throws {
        guard neighbours >= 1 else { throw GradNormIRError.invalidSetting(name: "neighbours", reason: "must be at least 1") }
        guard texts.count == embeddings.count else {
            throw GradNormIRError.invalidInput("\(embeddings.count) embeddings for \(texts.count) documents")
        }
        guard let d = embeddings.first?.count else { throw GradNormIRError.invalidInput("no documents") }
        try self.init(texts: texts, index: VectorIndex(dimension: d, vectors: embeddings), tokenizer: tokenizer,
                      neighbours: neighbours)
    }

    /// The same over an index of those embeddings already built (e.g. a `CorpusIndex`'s), not copied again.
    public init(texts: [String], index: VectorIndex, tokenizer: BertTokenizer, neighbours: Int = 10) throws {
        guard neighbours >= 1 else { throw GradNormIRError.invalidSetting(name: "neighbours", reason: "must be at least 1") }
        guard texts.count == index.count, index.count > 0 else {
            throw GradNormIRError.invalidInput("an index of \(index.count) embeddings for \(texts.count) documents")
        }
        self.index = index
        self.texts = texts
        self.tokenizer = tokenizer
        self.neighbours = min(neighbours, texts.count - 1)
    }

    /// The signals of the documents at `positions`, in that order.
    public func signals(of positions: [Int]) -> [DocumentSignals] {
        let hits = neighbours > 0 ? index.search(selfNeighboursOf: positions, k: neighbours)
            : [[Hit]](repeating: [], count: positions.count)
        return positions.indices.map { q in
            var s = DocumentSignals.tokens(of: texts[positions[q]], tokenizer: tokenizer)
            let sims = hits[q].map { Double($0.score) }
            s.density = sims.isEmpty ? 0 : sims.reduce(0, +) / Double(sims.count)
            s.nearest = sims.first ?? 0
            return s
        }
    }
}
