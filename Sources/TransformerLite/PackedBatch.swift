/// A batch of token-id sequences packed one after another without padding.
public struct PackedBatch: Sendable {
    /// All token ids, sequence after sequence.  (n)
    public let ids: [Int32]
    /// Position of each token inside its own sequence.  (n)
    public let positions: [Int32]
    /// Where each sequence sits.
    public let spans: [SequenceSpan]
    /// Total number of tokens n.
    public var tokenCount: Int { ids.count }
    /// The longest sequence.
    public let maxLength: Int

    /// Packs `sequences` (each non-empty). Ids are checked by the encoder, against its vocabulary
    /// and position table.
    public init(_ sequences: [[Int]]) {
        var ids: [Int32] = [], positions: [Int32] = [], spans: [SequenceSpan] = []
        let total = sequences.reduce(0) { $0 + $1.count }
        ids.reserveCapacity(total)
        positions.reserveCapacity(total)
        var start = 0, mx = 0
        for seq in sequences {
            precondition(!seq.isEmpty, "PackedBatch: empty sequence")
            for (p, id) in seq.enumerated() {
                ids.append(Int32(truncatingIfNeeded: id))
                positions.append(Int32(p))
            }
            spans.append(SequenceSpan(start: start, length: seq.count))
            start += seq.count
            mx = max(mx, seq.count)
        }
        self.ids = ids
        self.positions = positions
        self.spans = spans
        self.maxLength = mx
    }
}
