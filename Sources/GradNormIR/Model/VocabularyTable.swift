import Foundation

/// Token ↔ id map keyed by UTF-8 bytes: open addressing (linear probing) over FNV-1a hashes, so a
/// candidate piece is looked up straight from the word's byte buffer, `##` prefix included, with
/// no allocation.
struct VocabularyTable: Sendable {
    let tokens: [String]
    private let bytes: [UInt8]       // all tokens' UTF-8, concatenated
    private let offsets: [Int]       // token id's bytes are bytes[offsets[id]..<offsets[id + 1]]
    private let slots: [Int32]       // token id or -1; count is a power of two
    private let mask: Int

    private static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3
    private static let prefixBytes = Array(BertTokenizer.continuationPrefix.utf8)
    /// FNV-1a state after hashing the continuation prefix.
    private static let prefixHash: UInt64 = prefixBytes.reduce(fnvOffset) { ($0 ^ UInt64($1)) &* fnvPrime }

    var count: Int { tokens.count }

    init(_ vocabulary: [String], source: String) throws {
        tokens = vocabulary
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(vocabulary.count + 1)
        for token in vocabulary {
            bytes.append(contentsOf: token.utf8)
            offsets.append(bytes.count)
        }
        var size = 16
        while size < 2 * vocabulary.count { size *= 2 }
        let mask = size - 1
        var slots = [Int32](repeating: -1, count: size)
        try bytes.withUnsafeBufferPointer { all in
            for id in vocabulary.indices {
                let token = UnsafeBufferPointer(rebasing: all[offsets[id]..<offsets[id + 1]])
                var slot = Int(truncatingIfNeeded: Self.hash(token, seed: Self.fnvOffset)) & mask
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    if all[offsets[other]..<offsets[other + 1]].elementsEqual(token) {
                        throw GradNormIRError.tokenizer(
                            path: source,
                            reason: "duplicate token '\(vocabulary[id])' at lines \(other + 1) and \(id + 1)")
                    }
                    slot = (slot + 1) & mask
                }
                slots[slot] = Int32(id)
            }
        }
        self.bytes = bytes
        self.offsets = offsets
        self.mask = mask
        self.slots = slots
    }

    private static func hash(_ piece: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        var h = seed
        for b in piece { h = (h ^ UInt64(b)) &* fnvPrime }
        // Fold the high bits in: FNV's low bits alone cluster on short keys.
        return h ^ (h >> 29)
    }

    func id(of token: String) -> Int? {
        var token = token
        return token.withUTF8 { id(of: $0, continuation: false) }
    }

    func token(of id: Int) -> String? { tokens.indices.contains(id) ? tokens[id] : nil }

    /// The id of `piece`, or of `##piece` when `continuation` is set.
    func id(of piece: UnsafeBufferPointer<UInt8>, continuation: Bool) -> Int? {
        let prefix = continuation ? Self.prefixBytes.count : 0
        var slot = Int(truncatingIfNeeded: Self.hash(piece, seed: continuation ? Self.prefixHash : Self.fnvOffset)) & mask
        return bytes.withUnsafeBufferPointer { all -> Int? in
            while true {
                let id = Int(slots[slot])
                if id < 0 { return nil }
                let start = offsets[id], end = offsets[id + 1]
                if end - start == prefix + piece.count
                    && (prefix == 0 || all[start..<start + prefix].elementsEqual(Self.prefixBytes))
                    && all[(start + prefix)..<end].elementsEqual(piece) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }
}
