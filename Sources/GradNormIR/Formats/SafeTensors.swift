import Foundation

/// A read-only view of one `.safetensors` file, memory-mapped and fully validated on open.
///
/// Format (huggingface/safetensors, `safetensors/src/tensor.rs`):
///
///     [ n: UInt64 little-endian ][ n bytes of UTF-8 JSON header ][ data section ]
///
/// The header is a JSON object `{name: {"dtype": "F32", "shape": [d0, d1, …],
/// "data_offsets": [begin, end]}, …, "__metadata__": {String: String}}`; offsets are byte
/// offsets relative to the start of the data section, and all values are little-endian.
///
/// Opening checks everything a later read relies on, so reads never go out of bounds: the file
/// holds at least the 8-byte length, the header fits in the file, it is UTF-8 JSON of the shape
/// above, every dtype is known, every shape is non-negative, and every tensor satisfies
/// `begin ≤ end ≤ data size` and `end − begin = product(shape) × dtype size`.
/// Unlike the reference reader, tensors need not tile the data section contiguously (a
/// gap or an overlap cannot make a read unsafe, so it is not an error here).
public struct SafeTensorsFile: Sendable {
    /// Element types of the format. The floating types convert to `Float`; the others are
    /// recognised (so their sizes validate) but cannot be read as floats.
    public enum DType: String, Sendable, CaseIterable {
        case F64, F32, F16, BF16
        case I64, I32, I16, I8
        case U64, U32, U16, U8
        case BOOL
        case F8_E4M3, F8_E5M2

        /// Bytes per element.
        public var byteSize: Int {
            switch self {
            case .F64, .I64, .U64: return 8
            case .F32, .I32, .U32: return 4
            case .F16, .BF16, .I16, .U16: return 2
            case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
            }
        }

        /// Whether `floats(_:)` can read this dtype (F32 directly, F16/BF16/F64 converted).
        public var convertsToFloat: Bool {
            switch self {
            case .F64, .F32, .F16, .BF16: return true
            default: return false
            }
        }
    }

    /// Description of one tensor in the header.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range relative to the start of the data section.
        public let dataOffsets: Range<Int>
        /// Number of elements (`product(shape)`, 1 for a scalar).
        public var count: Int { shape.reduce(1, *) }
    }

    /// The file this view was opened from (used in every error message).
    public let path: String
    /// The `__metadata__` map (empty when the header has none).
    public let metadata: [String: String]
    /// Tensor names in file order (by data offset, then name).
    public let tensorNames: [String]

    private let infos: [String: TensorInfo]
    /// The whole file, memory-mapped.
    private let bytes: Data
    /// Byte offset of the data section in `bytes` (8 + header length).
    private let dataStart: Int

    /// Largest header accepted, as in the reference implementation (`MAX_HEADER_SIZE`).
    public static let maxHeaderBytes = 100_000_000

    /// Opens and validates `path`. Throws `GradNormIRError.fileNotFound` / `.io` when the file
    /// cannot be read, `.invalidUTF8` / `.malformedJSON` for a bad header, and `.checkpoint`
    /// (naming the tensor when there is one) for every structural problem.
    public init(path: String) throws {
        try self.init(path: path, bytes: mapFile(path))
    }

    /// Validates an in-memory safetensors image; `path` is used only in error messages.
    public init(path: String, bytes data: Data) throws {
        func fail(_ reason: String, tensor: String? = nil) -> GradNormIRError {
            .checkpoint(path: path, tensor: tensor, reason: reason)
        }
        let fileSize = data.count
        guard fileSize >= 8 else {
            throw fail("truncated safetensors file: \(fileSize) bytes, shorter than the 8-byte header length")
        }
        // 8-byte little-endian header length.
        let n64: UInt64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard n64 <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(n64) exceeds the \(Self.maxHeaderBytes)-byte limit (not a safetensors file?)")
        }
        let n = Int(n64)
        guard n <= fileSize - 8 else {
            throw fail("header length \(n) runs past the end of the file (\(fileSize) bytes): truncated or not a safetensors file")
        }
        guard n >= 2 else { throw GradNormIRError.malformedJSON(path: path, line: nil, reason: "safetensors header of \(n) bytes cannot be a JSON object") }
        let headerBytes = data.subdata(in: 8 ..< 8 + n)
        guard String(data: headerBytes, encoding: .utf8) != nil else {
            throw GradNormIRError.invalidUTF8(path: path, line: nil)
        }
        let header: RawHeader
        do {
            header = try JSONDecoder().decode(RawHeader.self, from: headerBytes)
        } catch {
            throw jsonFailure(error, path: path, what: "safetensors header", json: headerBytes, tensorFromPath: true)
        }

        let dataSize = fileSize - 8 - n
        var infos: [String: TensorInfo] = [:]
        for (name, e) in header.entries.sorted(by: { $0.0 < $1.0 }) {  // sorted: deterministic errors
            guard let dtype = DType(rawValue: e.dtype) else {
                throw fail("unknown or unsupported dtype '\(e.dtype)' (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))", tensor: name)
            }
            guard e.shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("shape \(e.shape) has a negative dimension", tensor: name)
            }
            guard e.dataOffsets.count == 2 else {
                throw fail("data_offsets must be [begin, end], got \(e.dataOffsets)", tensor: name)
            }
            let begin = e.dataOffsets[0], end = e.dataOffsets[1]
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("data_offsets [\(begin), \(end)] are outside the \(dataSize)-byte data section (begin ≤ end ≤ data size is required): file truncated?", tensor: name)
            }
            var bytesNeeded = dtype.byteSize
            for d in e.shape {
                let (p, overflow) = bytesNeeded.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("shape \(e.shape) is too large", tensor: name) }
                bytesNeeded = p
            }
            guard end - begin == bytesNeeded else {
                throw fail("data_offsets [\(begin), \(end)] span \(end - begin) bytes, but shape \(e.shape) of \(dtype.rawValue) needs \(bytesNeeded)", tensor: name)
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: e.shape, dataOffsets: begin ..< end)
        }
        self.path = path
        self.metadata = header.metadata
        self.infos = infos
        self.tensorNames = infos.values.sorted {
            ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name)
        }.map(\.name)
        self.bytes = data
        self.dataStart = 8 + n
    }

    /// Dtype, shape and byte range of `name`, or nil if the file has no such tensor.
    public func info(_ name: String) -> TensorInfo? { infos[name] }

    /// The tensor `name` as Float: F32 as stored, F16/BF16/F64 converted (F64 rounds to nearest).
    /// Throws `.checkpoint` naming the tensor if it is absent or has a non-floating dtype.
    public func floats(_ name: String) throws -> [Float] {
        let info = try floatInfo(name)
        return [Float](unsafeUninitializedCapacity: info.count) { buf, initialized in
            convert(info, into: buf.baseAddress!)
            initialized = info.count
        }
    }

    /// Copies the tensor `name`, converted to Float as in `floats(_:)`, into `destination`,
    /// which must hold exactly the tensor's element count (no temporary array).
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try floatInfo(name)
        guard destination.count == info.count else {
            throw GradNormIRError.checkpoint(path: path, tensor: name,
                                             reason: "has \(info.count) elements but the destination holds \(destination.count)")
        }
        guard let dst = destination.baseAddress, info.count > 0 else { return }
        convert(info, into: dst)
    }

    private func floatInfo(_ name: String) throws -> TensorInfo {
        guard let info = infos[name] else {
            throw GradNormIRError.checkpoint(path: path, tensor: name, reason: "no such tensor in the file")
        }
        guard info.dtype.convertsToFloat else {
            throw GradNormIRError.checkpoint(path: path, tensor: name,
                                             reason: "has dtype \(info.dtype.rawValue); a floating dtype (F32, F16, BF16, F64) is required")
        }
        return info
    }

    /// Converts the (validated, in-bounds) bytes of `info` into `dst[0 ..< info.count]`.
    private func convert(_ info: TensorInfo, into dst: UnsafeMutablePointer<Float>) {
        let count = info.count
        guard count > 0 else { return }
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = UnsafeRawBufferPointer(rebasing: raw[(dataStart + info.dataOffsets.lowerBound) ..< (dataStart + info.dataOffsets.upperBound)])
            switch info.dtype {
            case .F32:
                #if _endian(little)
                UnsafeMutableRawPointer(dst).copyMemory(from: src.baseAddress!, byteCount: src.count)
                #else
                for i in 0 ..< count {
                    dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                #endif
            case .F16:
                for i in 0 ..< count {
                    dst[i] = Self.halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .BF16:
                // bfloat16 is the upper half of an IEEE binary32.
                for i in 0 ..< count {
                    let h = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(h) << 16)
                }
            case .F64:
                for i in 0 ..< count {
                    dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            default:
                preconditionFailure("floatInfo admits only floating dtypes")
            }
        }
    }

    /// IEEE binary16 → binary32, exact (every half is representable as a float).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x03FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa × 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            // Infinity or NaN (payload kept).
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            // Re-bias the exponent from 15 to 127.
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
    }
}

// MARK: - Header decoding

/// A coding key for the arbitrary tensor names of a header.
private struct NameKey: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

private struct RawEntry: Decodable {
    let dtype: String
    let shape: [Int]
    let dataOffsets: [Int]
    enum CodingKeys: String, CodingKey {
        case dtype, shape
        case dataOffsets = "data_offsets"
    }
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dtype = try c.decode(String.self, forKey: .dtype)
        shape = try c.decodeIntegers(forKey: .shape)
        dataOffsets = try c.decodeIntegers(forKey: .dataOffsets)
    }
}

private struct RawHeader: Decodable {
    var metadata: [String: String] = [:]
    var entries: [(String, RawEntry)] = []

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: NameKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try container.decode(RawEntry.self, forKey: key)))
            }
        }
    }
}

// MARK: - JSON helpers

/// JSON integers are decoded through `Double` and checked here, because Foundation's
/// `JSONDecoder` on Linux reports a non-integer where an `Int` is expected (`[1.5]`) as
/// "not valid JSON" with no coding path, which would hide the key and the tensor.
/// Integers beyond 2^53 are refused: no size or offset in a real checkpoint comes near.
private func exactInteger(_ d: Double, _ path: [CodingKey]) throws -> Int {
    guard d.rounded() == d else {
        throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "expected an integer, found \(d)"))
    }
    guard abs(d) <= 0x1p53 else {
        throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "integer \(d) is too large (limit 2^53)"))
    }
    return Int(d)
}

private struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue!)" }
    init(_ i: Int) { intValue = i }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

extension KeyedDecodingContainer {
    /// A JSON number that must be an exact integer (see `exactInteger`).
    func decodeInteger(forKey key: Key) throws -> Int {
        try exactInteger(decode(Double.self, forKey: key), codingPath + [key])
    }

    /// As `decodeInteger`, nil when the key is absent or null.
    func decodeIntegerIfPresent(forKey key: Key) throws -> Int? {
        guard let d = try decodeIfPresent(Double.self, forKey: key) else { return nil }
        return try exactInteger(d, codingPath + [key])
    }

    /// A JSON array of exact integers.
    func decodeIntegers(forKey key: Key) throws -> [Int] {
        var u = try nestedUnkeyedContainer(forKey: key)
        var out: [Int] = []
        while !u.isAtEnd {
            let path = codingPath + [key, IndexKey(u.currentIndex)]
            out.append(try exactInteger(u.decode(Double.self), path))
        }
        return out
    }
}

/// Maps a `JSONDecoder` failure on the file `path` (`what` prefixes the reason, may be empty)
/// to a `GradNormIRError`: syntax errors become
/// `.malformedJSON`; a missing key or a wrong type becomes `.checkpoint` with the key path
/// (whose first component is the tensor name when `tensorFromPath` is set). `json`, the
/// document, tells a syntax error from a type error that the decoder reports without a path.
func jsonFailure(_ error: Error, path: String, what: String, json: Data? = nil,
                 tensorFromPath: Bool = false) -> GradNormIRError {
    let what = what.isEmpty ? "" : what + ": "
    guard let e = error as? DecodingError else {
        return .malformedJSON(path: path, line: nil, reason: "\(what)\(error.localizedDescription)")
    }
    func keyPath(_ p: [CodingKey]) -> String {
        p.reduce(into: "") { s, k in
            if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + k.stringValue }
        }
    }
    func located(_ p: [CodingKey], _ reason: String) -> GradNormIRError {
        if tensorFromPath, let head = p.first, head.stringValue != "__metadata__" {
            let rest = keyPath(Array(p.dropFirst()))
            return .checkpoint(path: path, tensor: head.stringValue,
                               reason: "\(what)\(rest.isEmpty ? "" : "'\(rest)': ")\(reason)")
        }
        let at = keyPath(p)
        return .checkpoint(path: path, tensor: nil, reason: "\(what)\(at.isEmpty ? "" : "'\(at)': ")\(reason)")
    }
    switch e {
    case .dataCorrupted(let ctx):
        if ctx.codingPath.isEmpty, let data = json,
           (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil {
            // Valid JSON that Foundation's decoder still calls corrupted: a value of the
            // wrong kind somewhere (it does not say where).
            return .checkpoint(path: path, tensor: nil, reason: "\(what)a value has the wrong type or range (\(ctx.debugDescription))")
        }
        if ctx.codingPath.isEmpty {
            let underlying = ctx.underlyingError.map { " (\($0.localizedDescription))" } ?? ""
            return .malformedJSON(path: path, line: nil, reason: "\(what)\(ctx.debugDescription)\(underlying)")
        }
        return located(ctx.codingPath, ctx.debugDescription)
    case .keyNotFound(let key, let ctx):
        return located(ctx.codingPath + [key], "required key is missing")
    case .typeMismatch(let type, let ctx):
        if ctx.codingPath.isEmpty {
            return .malformedJSON(path: path, line: nil, reason: "\(what)the document is not \(jsonTypeName(type))")
        }
        return located(ctx.codingPath, "expected \(jsonTypeName(type)) (\(ctx.debugDescription))")
    case .valueNotFound(let type, let ctx):
        return located(ctx.codingPath, "expected \(jsonTypeName(type)), found null")
    @unknown default:
        return .malformedJSON(path: path, line: nil, reason: "\(what)\(e)")
    }
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is Int.Type: return "an integer"
    case is Bool.Type: return "a boolean"
    case is String.Type: return "a string"
    case is Double.Type, is Float.Type: return "a number"
    default:
        let name = "\(type)"
        if name.hasPrefix("Array<") { return "a JSON array" }
        if name.hasPrefix("Dictionary<") { return "a JSON object" }
        return name
    }
}
