import Foundation

/// Renders an `Encodable` value as one line of JSON in the house style the command line prints:
/// `{"key": value, "list": [1, 2]}` — `": "` after a key, `", "` between entries, no newline.
///
/// - Object keys keep the order `encode(to:)` writes them (declaration order for synthesized
///   conformances); a `Dictionary`'s keys are sorted ascending, since its own order is random.
/// - Strings are escaped by `JSONLines.quote(_:)`; `Double` and `Float` print as Swift prints them
///   (`0.75`, `1e-05`, `100.0`), a non-finite one as `null`; integers in decimal.
/// - Synthesized conformances omit nil optionals (`encodeIfPresent`); `encodeNil` or encoding an
///   `Optional` with `encode` writes `null`.
public struct JSONLineEncoder: Sendable {
    public init() {}

    /// The JSON line for `value`, without a trailing newline. Throws `EncodingError.invalidValue`
    /// when `value` encodes nothing or its `encode(to:)` misuses the containers.
    public func encode<T: Encodable>(_ value: T) throws -> String {
        let state = EncodingState()
        let node = try state.box(value, at: [])
        if let error = state.error { throw error }
        guard let node else {
            throw EncodingError.invalidValue(value, .init(codingPath: [],
                                                          debugDescription: "\(T.self) did not encode any value"))
        }
        var out = ""
        node.render(into: &out)
        return out
    }
}

/// A JSON value being built; objects, arrays and slots are references so that a nested container
/// or super-encoder can be filled after its place in the parent is taken.
private enum Node {
    /// A rendered scalar: quoted string, number, `true`, `false` or `null`.
    case literal(String)
    case object(ObjectBox)
    case array(ArrayBox)
    /// What a super-encoder writes (`{}` if it writes nothing).
    case slot(Slot)

    static var null: Node { .literal("null") }
    static var emptyObject: Node { .object(ObjectBox()) }
    static func bool(_ v: Bool) -> Node { .literal(v ? "true" : "false") }
    static func string(_ s: String) -> Node { .literal(JSONLines.quote(s)) }
    static func double(_ x: Double) -> Node { .literal(x.isFinite ? "\(x)" : "null") }
    static func float(_ x: Float) -> Node { .literal(x.isFinite ? "\(x)" : "null") }
    static func integer<I: BinaryInteger>(_ x: I) -> Node { .literal(String(x)) }

    /// Appends the house-style text of this value to `out`.
    func render(into out: inout String) {
        switch self {
        case .literal(let s):
            out += s
        case .object(let o):
            out += "{"
            for (i, entry) in o.entries.enumerated() {
                if i > 0 { out += ", " }
                out += JSONLines.quote(entry.key)
                out += ": "
                entry.value.render(into: &out)
            }
            out += "}"
        case .array(let a):
            out += "["
            for (i, item) in a.items.enumerated() {
                if i > 0 { out += ", " }
                item.render(into: &out)
            }
            out += "]"
        case .slot(let s):
            (s.node ?? .emptyObject).render(into: &out)
        }
    }
}

/// An object's entries in insertion order; setting a key again replaces its value in place.
private final class ObjectBox {
    private(set) var entries: [(key: String, value: Node)] = []
    private var position: [String: Int] = [:]

    func set(_ key: String, _ value: Node) {
        if let i = position[key] {
            entries[i].value = value
        } else {
            position[key] = entries.count
            entries.append((key, value))
        }
    }

    func sortKeys() {
        entries.sort { $0.key < $1.key }
        position = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.key, $0) })
    }
}

private final class ArrayBox {
    var items: [Node] = []
}

/// The single value one encoder produces (nil until something is encoded).
private final class Slot {
    var node: Node?
}

/// Types whose keyed encoding has no meaningful order, so their keys are sorted.
private protocol UnorderedKeys {}
extension Dictionary: UnorderedKeys {}

/// A key for paths: an array index or `super`.
private struct PathKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
    init(intValue: Int) { stringValue = "Index \(intValue)"; self.intValue = intValue }
}

/// State shared by every encoder and container of one `encode` call.
private final class EncodingState {
    /// The first misuse of a container; thrown once encoding returns.
    private(set) var error: Error?

    func fail(_ message: String, at path: [CodingKey]) {
        if error == nil { error = EncodingError.invalidValue(message, .init(codingPath: path, debugDescription: message)) }
    }

    /// Encodes `value` into a new node (nil if it encodes nothing), sorting a dictionary's keys.
    func box<T: Encodable>(_ value: T, at path: [CodingKey]) throws -> Node? {
        let slot = Slot()
        try value.encode(to: ValueEncoder(state: self, slot: slot, codingPath: path))
        if value is UnorderedKeys, case .object(let o)? = slot.node { o.sortKeys() }
        return slot.node
    }
}

private final class ValueEncoder: Encoder {
    let state: EncodingState
    let slot: Slot
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(state: EncodingState, slot: Slot, codingPath: [CodingKey]) {
        self.state = state; self.slot = slot; self.codingPath = codingPath
    }

    /// The object already started by this encoder (e.g. by a superclass), else a new one.
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: ObjectBox
        switch slot.node {
        case .object(let o)?: box = o
        case nil: box = ObjectBox(); slot.node = .object(box)
        default: box = ObjectBox(); state.fail("keyed container after another value", at: codingPath)
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(state: state, box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        let box: ArrayBox
        switch slot.node {
        case .array(let a)?: box = a
        case nil: box = ArrayBox(); slot.node = .array(box)
        default: box = ArrayBox(); state.fail("unkeyed container after another value", at: codingPath)
        }
        return UnkeyedContainer(state: state, box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer {
        SingleContainer(state: state, slot: slot, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let state: EncodingState
    let box: ObjectBox
    let codingPath: [CodingKey]

    private func put(_ node: Node, _ key: CodingKey) { box.set(key.stringValue, node) }
    mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
    mutating func encode(_ v: Bool, forKey key: Key) throws { put(.bool(v), key) }
    mutating func encode(_ v: String, forKey key: Key) throws { put(.string(v), key) }
    mutating func encode(_ v: Double, forKey key: Key) throws { put(.double(v), key) }
    mutating func encode(_ v: Float, forKey key: Key) throws { put(.float(v), key) }
    mutating func encode(_ v: Int, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: Int8, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: Int16, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: Int32, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: Int64, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: UInt, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: UInt8, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: UInt16, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: UInt32, forKey key: Key) throws { put(.integer(v), key) }
    mutating func encode(_ v: UInt64, forKey key: Key) throws { put(.integer(v), key) }
    #if compiler(>=6.0)
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ v: Int128, forKey key: Key) throws { put(.integer(v), key) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ v: UInt128, forKey key: Key) throws { put(.integer(v), key) }
    #endif
    mutating func encode<T: Encodable>(_ v: T, forKey key: Key) throws {
        put(try state.box(v, at: codingPath + [key]) ?? .emptyObject, key)
    }

    mutating func nestedContainer<NK: CodingKey>(keyedBy type: NK.Type, forKey key: Key) -> KeyedEncodingContainer<NK> {
        let o = ObjectBox()
        put(.object(o), key)
        return KeyedEncodingContainer(KeyedContainer<NK>(state: state, box: o, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        let a = ArrayBox()
        put(.array(a), key)
        return UnkeyedContainer(state: state, box: a, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> Encoder { superEncoder(at: PathKey(stringValue: "super")) }
    mutating func superEncoder(forKey key: Key) -> Encoder { superEncoder(at: key) }
    private func superEncoder(at key: CodingKey) -> Encoder {
        let s = Slot()
        put(.slot(s), key)
        return ValueEncoder(state: state, slot: s, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer, PrimitiveSink {
    let state: EncodingState
    let box: ArrayBox
    let codingPath: [CodingKey]
    var count: Int { box.items.count }

    private var nextPath: [CodingKey] { codingPath + [PathKey(intValue: count)] }
    func put(_ node: Node) { box.items.append(node) }
    mutating func encode<T: Encodable>(_ v: T) throws { put(try state.box(v, at: nextPath) ?? .emptyObject) }

    mutating func nestedContainer<NK: CodingKey>(keyedBy type: NK.Type) -> KeyedEncodingContainer<NK> {
        let o = ObjectBox(), path = nextPath
        put(.object(o))
        return KeyedEncodingContainer(KeyedContainer<NK>(state: state, box: o, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let a = ArrayBox(), path = nextPath
        put(.array(a))
        return UnkeyedContainer(state: state, box: a, codingPath: path)
    }

    mutating func superEncoder() -> Encoder {
        let s = Slot(), path = nextPath
        put(.slot(s))
        return ValueEncoder(state: state, slot: s, codingPath: path)
    }
}

/// Writes the encoder's one value; writing a second one is reported as an error.
private struct SingleContainer: SingleValueEncodingContainer, PrimitiveSink {
    let state: EncodingState
    let slot: Slot
    let codingPath: [CodingKey]

    func put(_ node: Node) {
        if slot.node == nil { slot.node = node } else { state.fail("second value in a single-value container", at: codingPath) }
    }
    mutating func encode<T: Encodable>(_ v: T) throws { put(try state.box(v, at: codingPath) ?? .emptyObject) }
}

/// A container that takes one primitive value at a time (`put`): the unkeyed and the
/// single-value containers share their primitive `encode` methods through it (128-bit integers
/// keep the standard library's defaults).
private protocol PrimitiveSink {
    func put(_ node: Node)
}

extension PrimitiveSink {
    mutating func encodeNil() throws { put(.null) }
    mutating func encode(_ v: Bool) throws { put(.bool(v)) }
    mutating func encode(_ v: String) throws { put(.string(v)) }
    mutating func encode(_ v: Double) throws { put(.double(v)) }
    mutating func encode(_ v: Float) throws { put(.float(v)) }
    mutating func encode(_ v: Int) throws { put(.integer(v)) }
    mutating func encode(_ v: Int8) throws { put(.integer(v)) }
    mutating func encode(_ v: Int16) throws { put(.integer(v)) }
    mutating func encode(_ v: Int32) throws { put(.integer(v)) }
    mutating func encode(_ v: Int64) throws { put(.integer(v)) }
    mutating func encode(_ v: UInt) throws { put(.integer(v)) }
    mutating func encode(_ v: UInt8) throws { put(.integer(v)) }
    mutating func encode(_ v: UInt16) throws { put(.integer(v)) }
    mutating func encode(_ v: UInt32) throws { put(.integer(v)) }
    mutating func encode(_ v: UInt64) throws { put(.integer(v)) }
}
