import Foundation
import TransformerLite

/// One F32 tensor for `SafeTensorsFile.writeStreaming`: a range of a flat buffer (written without
/// a copy) or an array.
struct StreamedTensor {
    enum Source {
        case buffer(FlatBuffer, Range<Int>)
        case array([Float])
    }
    let name: String
    let shape: [Int]
    let source: Source
    var count: Int {
        switch source {
        case .buffer(_, let r): return r.count
        case .array(let a): return a.count
        }
    }
}

extension SafeTensorsFile {
    /// Writes F32 tensors, in the order given, to `path` (atomically, through
    /// `writeStreaming(tensors:metadata:to:)`). The header lists
    /// `__metadata__` first (omitted when empty) and is padded with spaces to a multiple of
    /// 8 bytes, as the reference writer does, so the data section is 8-byte aligned.
    /// Throws `.invalidInput` for an empty, duplicate or reserved name, a negative dimension or
    /// a data count that differs from `product(shape)`, and `.io` if the file cannot be written.
    public static func write(tensors: [(name: String, shape: [Int], data: [Float])],
                             metadata: [String: String], to path: String) throws {
        try writeStreaming(tensors: tensors.map { StreamedTensor(name: $0.name, shape: $0.shape, source: .array($0.data)) },
                           metadata: metadata, to: path)
    }

    /// Writes F32 tensors in the order given to `path`, atomically (temporary file, fsync,
    /// rename), streaming the data from the buffers (no copy of the parameters): `__metadata__`
    /// first (omitted when empty), the header padded with spaces to a multiple of 8 bytes.
    static func writeStreaming(tensors: [StreamedTensor], metadata: [String: String], to path: String) throws {
        var seen = Set<String>()
        var entries: [String] = []
        if !metadata.isEmpty {
            let body = metadata.keys.sorted().map { JSONLines.quote($0) + ":" + JSONLines.quote(metadata[$0]!) }
            entries.append(JSONLines.quote("__metadata__") + ":{" + body.joined(separator: ",") + "}")
        }
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__" else {
                throw GradNormIRError.invalidInput("safetensors writer: invalid tensor name '\(t.name)' for \(path)")
            }
            guard seen.insert(t.name).inserted else {
                throw GradNormIRError.invalidInput("safetensors writer: tensor '\(t.name)' given twice for \(path)")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.count else {
                throw GradNormIRError.invalidInput("safetensors writer: tensor '\(t.name)' has shape \(t.shape) but \(t.count) values")
            }
            let end = offset + 4 * t.count
            entries.append(JSONLines.quote(t.name) + ":{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        try writeAtomically(path) { h in
            var prefix = Data()
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefix.append(contentsOf: $0) }
            prefix.append(contentsOf: header)
            try h.write(contentsOf: prefix)
            for t in tensors {
                switch t.source {
                case .buffer(let b, let r):
                    try b.withUnsafeBufferPointer { all in
                        try writeFloats(UnsafeBufferPointer(rebasing: all[r]), to: h)
                    }
                case .array(let a):
                    try a.withUnsafeBufferPointer { try writeFloats($0, to: h) }
                }
            }
        }
    }

    /// Little-endian F32 bytes, in chunks of 4 MB.
    private static func writeFloats(_ p: UnsafeBufferPointer<Float>, to h: FileHandle) throws {
        let chunk = 1 << 20
        var i = 0
        while i < p.count {
            let n = min(chunk, p.count - i)
            #if _endian(little)
            let data = Data(bytes: p.baseAddress! + i, count: 4 * n)
            #else
            var data = Data(capacity: 4 * n)
            for k in i ..< i + n { withUnsafeBytes(of: p[k].bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            #endif
            try h.write(contentsOf: data)
            i += n
        }
    }
}
