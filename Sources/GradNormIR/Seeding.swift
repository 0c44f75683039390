import Foundation
import TransformerLite

// Determinism: every random draw of the library comes from a `SplitMix64` whose seed is derived
// here, from the user's seed and what the draw is for, so one seed reproduces a whole run on every
// platform; and the fingerprints that tell a saved run's inputs apart.

/// FNV-1a, 64 bits: a hash that, unlike `hashValue`, is the same in every run and on every
/// platform — for seeds derived from names and for fingerprints of saved runs.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ byte: UInt64) { value = (value ^ byte) &* 0x100_0000_01b3 }

    mutating func add<S: Sequence>(bytes: S) where S.Element: FixedWidthInteger {
        for b in bytes { add(UInt64(truncatingIfNeeded: b)) }
    }

    /// The value as 16 hexadecimal digits.
    var hex: String { String(format: "%016llx", value) }

    /// FNV-1a of a string's UTF-8 bytes.
    static func of(_ s: String) -> UInt64 {
        var h = FNV1a64()
        h.add(bytes: s.utf8)
        return h.value
    }
}

/// How a draw's seed is derived from a run's seed. One place for every derivation, so that two
/// draws never share a stream by accident and a reader can see which draws are independent.
enum Seed {
    /// Tags of the draws that use `tagged(_:_:)`: the ASCII of a short word.
    static let sampleTag: UInt64 = 0x5A4D_504C_4553    // "ZMPLES": `seededSample`
    static let arrivalTag: UInt64 = 0x4152_5249_5645   // "ARRIVE": the simulation's arrival order
    static let epochTag: UInt64 = 0x5348_5546_464C_4521  // "SHUFFLE!": an update's epoch shuffles
    static let replayTag: UInt64 = 0x5245_504C_4159    // "REPLAY": an update's replay documents per step
    static let dropoutTag: UInt64 = 0x4452_4F50_4F55_54  // "DROPOUT": an update's dropout masks per step

    /// The seed of draw `index` of a family (document d's dropout mask, session s's detectors):
    /// seed ⊕ index·φ, φ = 2⁶⁴/golden ratio (SplitMix64's increment), so neighbouring indices
    /// start far apart.
    static func indexed(_ seed: UInt64, _ index: Int) -> UInt64 {
        seed ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The seed of a draw named by a string (a corpus, a model history): seed ⊕ FNV-1a(name).
    static func named(_ seed: UInt64, _ name: String) -> UInt64 { seed ^ FNV1a64.of(name) }

    /// The seed of a draw with a fixed tag: seed ⊕ tag.
    static func tagged(_ seed: UInt64, _ tag: UInt64) -> UInt64 { seed ^ tag }

    /// Three words mixed into one seed (the SplitMix64 finaliser over a running combination), for
    /// draws indexed by two numbers (an update's step and batch slot).
    static func mixed(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var g = SplitMix64(seed: a)
        let x = g.next() ^ b
        var g2 = SplitMix64(seed: x)
        let y = g2.next() ^ c
        var g3 = SplitMix64(seed: y)
        return g3.next()
    }
}

/// Shuffles `a` in place with Fisher–Yates driven by the engine's own generator, so a seed gives
/// the same order on every platform and Swift version (the standard library's `shuffle(using:)`
/// does not promise its algorithm).
func seededShuffle<T>(_ a: inout [T], rng: inout SplitMix64) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
        a.swapAt(i, Int(rng.next() % UInt64(i + 1)))
    }
}

/// `sample` distinct indices of `0..<count` drawn with a seeded partial Fisher–Yates shuffle,
/// returned in ascending order (all of them when sample ≥ count). Which documents to score when
/// only some are (the paper's regime: a large index, few scored documents).
public func seededSample(count: Int, sample: Int, seed: UInt64) -> [Int] {
    guard sample < count else { return Array(0..<count) }
    var a = Array(0..<count)
    var rng = SplitMix64(seed: Seed.tagged(seed, Seed.sampleTag))
    for i in 0..<max(0, sample) {
        let j = i + Int(rng.next() % UInt64(count - i))
        a.swapAt(i, j)
    }
    return a[0..<max(0, sample)].sorted()
}

/// Fingerprints (FNV-1a 64, hex) of what a saved run was computed from, so a resumed run can
/// refuse other inputs.
public enum Fingerprint {
    /// The texts in order (each followed by the byte 0xFF, which never occurs in UTF-8).
    static func of(texts: [String]) -> String {
        var h = FNV1a64()
        for t in texts {
            h.add(bytes: t.utf8)
            h.add(0xFF)
        }
        return h.hex
    }

    /// A corpus: every document's id and text (title and text), in order.
    public static func of(documents: [Document]) -> String {
        var h = FNV1a64()
        for d in documents {
            for part in [d.id, d.title, d.text] {
                h.add(bytes: part.utf8)
                h.add(0xFF)
            }
        }
        return h.hex
    }

    /// A BEIR dataset: its corpus (`of(documents:)`), its queries (id and text, in order) and its
    /// relevance judgements (query, document, score; sorted).
    static func of(dataset d: BEIRDataset) -> String {
        var h = FNV1a64()
        h.add(bytes: of(documents: d.corpus).utf8)
        for q in d.queries {
            for part in [q.id, q.text] {
                h.add(bytes: part.utf8)
                h.add(0xFF)
            }
        }
        for q in d.qrels.keys.sorted() {
            for doc in d.qrels[q]!.keys.sorted() {
                h.add(bytes: "\(q)\t\(doc)\t\(d.qrels[q]![doc]!)".utf8)
                h.add(0xFF)
            }
        }
        return h.hex
    }

    /// Everything that decides a retriever's embeddings: its parameters bit for bit, its encoder
    /// configuration (sizes, pooling, normalisation), its vocabulary and tokenizer settings, and
    /// its default sequence length. Two folders with the same model give the same fingerprint;
    /// changed weights, config, vocabulary or pooling give another.
    static func of(retriever r: Retriever) -> String {
        var h = FNV1a64()
        r.checkpoint.parameters.withUnsafeBufferPointer { b in h.add(bytes: b.lazy.map(\.bitPattern)) }
        let c = r.config
        let settings = "\(c.vocabSize) \(c.hiddenSize) \(c.numLayers) \(c.numHeads) \(c.intermediateSize) "
            + "\(c.maxPositions) \(c.typeVocabSize) \(c.layerNormEps.bitPattern) \(c.pooling.rawValue) \(c.normalize) "
            + "\(r.tokenizer.lowercase) \(r.tokenizer.stripAccents) \(r.tokenizer.tokenizeChineseChars) "
            + "\(r.tokenizer.maxInputCharsPerWord) \(r.defaultMaxLength)"
        h.add(bytes: settings.utf8)
        for id in 0..<r.tokenizer.vocabularySize {
            h.add(0xFF)
            h.add(bytes: (r.tokenizer.token(of: id) ?? "").utf8)
        }
        return h.hex
    }
}
