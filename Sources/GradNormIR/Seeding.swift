import Foundation
import TransformerLite

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

/// Shuffles `a` in place with Fisher–Yates driven by the engine's own generator, so a seed gives
/// the same order on every platform and Swift version (the standard library's `shuffle(using:)`
/// does not promise its algorithm).
func seededShuffle<T>(_ a: inout [T], rng: inout SplitMix64) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
        a.swapAt(i, Int(rng.next() % UInt64(i + 1)))
    }
}
