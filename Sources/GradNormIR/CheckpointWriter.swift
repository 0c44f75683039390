import Foundation
import TransformerLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Checkpoints from parameters in memory, and saving them

extension Checkpoint {
    /// The same checkpoint (config, tokenizer settings, source folder) with other parameters of the
    /// same layout, e.g. the result of an update. The buffer is used as is, not copied.
    public func replacingParameters(_ newParameters: FlatBuffer) -> Checkpoint {
        precondition(newParameters.count == layout.count, "Checkpoint.replacingParameters: wrong parameter count")
        return Checkpoint(config: config, layout: layout, parameters: newParameters, folder: folder,
                          maxSeqLength: maxSeqLength, lowercase: lowercase, stripAccents: stripAccents,
                          vocabFile: vocabFile)
    }

    /// Saves the checkpoint to `folder` in the Hugging Face / sentence-transformers layout that
    /// `Checkpoint.load` and PyTorch read:
    ///
    /// - `model.safetensors`: every parameter as F32, under the source file's own tensor names
    ///   (query, key and value as three tensors, as in the source; a `bert.` prefix or TF-era
    ///   `LayerNorm.gamma/beta` names kept), in layout order. The source's `pooler.*` tensors, which
    ///   the encoder never uses or changes, are copied (as F32) so that a Hugging Face `BertModel`
    ///   loads without missing weights; the integer buffer `embeddings.position_ids` is not written
    ///   (current Hugging Face code rebuilds it).
    /// - every other file the source folder holds at its top level with a `.json` or `.txt` name
    ///   (config.json, vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
    ///   modules.json, sentence_bert_config.json, …) and the module sub-folders named in
    ///   `modules.json` (e.g. `1_Pooling/`), copied byte for byte.
    ///
    /// Every file is written to a temporary name in its final folder, flushed to disk and renamed
    /// over the target, so a reader never sees a half-written file. `folder` is created if needed;
    /// other files in it are left alone. Throws `.io` when `folder` is a file or cannot be written,
    /// and `.invalidInput` when the pooling was overridden (`withPooling`): the copied pooling files
    /// would contradict it.
    public func save(to folder: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: folder, isDirectory: &isDir) {
            guard isDir.boolValue else { throw GradNormIRError.io(path: folder, reason: "is a file, expected a folder") }
        } else {
            do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw GradNormIRError.io(path: folder, reason: "cannot create the folder: \(error.localizedDescription)")
            }
        }
        let src = URL(fileURLWithPath: self.folder, isDirectory: true)
        let dst = URL(fileURLWithPath: folder, isDirectory: true)
        if src.standardizedFileURL.resolvingSymlinksInPath() == dst.standardizedFileURL.resolvingSymlinksInPath() {
            throw GradNormIRError.io(path: folder, reason: "is the checkpoint's own source folder; save to another folder")
        }

        // The pooling files are copied from the source: refuse when the pooling was overridden
        // in memory (`withPooling`), rather than save a folder that loads with the other pooling.
        let (sourcePooling, _) = try Checkpoint.readPooling(folder: src, hiddenSize: config.hiddenSize)
        if sourcePooling != config.pooling {
            throw GradNormIRError.invalidInput("\(folder): cannot save a checkpoint whose pooling was overridden "
                + "(\(config.pooling.rawValue); the source folder \(self.folder) says \(sourcePooling.rawValue))")
        }

        // 1. The weights, under the source's names.
        let sourceWeights = try SafeTensorsFile(path: src.appendingPathComponent("model.safetensors").path)
        var sourceName: [String: String] = [:]  // layout name → name in the source file
        var extras: [(String, [Int], [Float])] = []
        for name in sourceWeights.tensorNames {
            if let canonical = Checkpoint.canonicalName(name) {
                sourceName[canonical] = name
            } else if let info = sourceWeights.info(name), info.dtype.convertsToFloat,
                      name.hasPrefix("pooler.") || name.hasPrefix("bert.pooler.") {
                extras.append((name, info.shape, try sourceWeights.floats(name)))
            }
        }
        var tensors: [StreamedTensor] = layout.tensors.map { slot in
            StreamedTensor(name: sourceName[slot.name] ?? slot.name, shape: slot.shape,
                           source: .buffer(parameters, slot.offset ..< slot.offset + slot.count))
        }
        tensors += extras.map { StreamedTensor(name: $0.0, shape: $0.1, source: .array($0.2)) }
        try SafeTensorsFile.writeStreaming(tensors: tensors, metadata: ["format": "pt"],
                                           to: dst.appendingPathComponent("model.safetensors").path)

        // 2. Configuration and tokenizer files, and the module folders.
        let top = (try? fm.contentsOfDirectory(atPath: src.path)) ?? []
        for name in top.sorted() where (name.hasSuffix(".json") || name.hasSuffix(".txt"))
            && name != "model.safetensors.index.json" {
            var d: ObjCBool = false
            let path = src.appendingPathComponent(name).path
            guard fm.fileExists(atPath: path, isDirectory: &d), !d.boolValue else { continue }
            try copyAtomically(from: path, to: dst.appendingPathComponent(name).path)
        }
        for sub in try moduleFolders(src) {
            let from = src.appendingPathComponent(sub), to = dst.appendingPathComponent(sub)
            do { try fm.createDirectory(at: to, withIntermediateDirectories: true) } catch {
                throw GradNormIRError.io(path: to.path, reason: "cannot create the folder: \(error.localizedDescription)")
            }
            for name in ((try? fm.contentsOfDirectory(atPath: from.path)) ?? []).sorted() {
                var d: ObjCBool = false
                let path = from.appendingPathComponent(name).path
                guard fm.fileExists(atPath: path, isDirectory: &d), !d.boolValue else { continue }
                try copyAtomically(from: path, to: to.appendingPathComponent(name).path)
            }
        }
    }

    /// The non-empty `path`s of `modules.json` (sub-folders such as `1_Pooling`), if the file exists.
    private func moduleFolders(_ src: URL) throws -> [String] {
        let path = src.appendingPathComponent("modules.json").path
        guard FileManager.default.fileExists(atPath: path),
              let data = FileManager.default.contents(atPath: path),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.compactMap { $0["path"] as? String }.filter {
            !$0.isEmpty && !$0.hasPrefix("/") && !$0.split(separator: "/").contains("..")
        }
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsynced, renamed.
public func writeFileAtomically(_ path: String, _ data: Data) throws {
    try writeAtomically(path) { try $0.write(contentsOf: data) }
}

/// Copies a file through a temporary file in the target folder, flushed and then renamed.
func copyAtomically(from: String, to: String) throws {
    guard let data = FileManager.default.contents(atPath: from) else {
        throw GradNormIRError.io(path: from, reason: "cannot read")
    }
    try writeAtomically(to) { handle in try handle.write(contentsOf: data) }
}

/// Writes `to` through `<to>.tmp-<pid>` in the same folder: `body` fills the file, which is then
/// fsynced and renamed over `to` (atomic on POSIX file systems), and the folder is fsynced.
func writeAtomically(_ to: String, _ body: (FileHandle) throws -> Void) throws {
    let tmp = to + ".tmp-\(getpid())"
    let fm = FileManager.default
    try? fm.removeItem(atPath: tmp)
    guard fm.createFile(atPath: tmp, contents: nil) else {
        throw GradNormIRError.io(path: to, reason: "cannot create \(tmp)")
    }
    do {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
        defer { try? handle.close() }
        try body(handle)
        try handle.synchronize()
    } catch let e as GradNormIRError {
        try? fm.removeItem(atPath: tmp)
        throw e
    } catch {
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot write: \(error.localizedDescription)")
    }
    guard rename(tmp, to) == 0 else {
        let reason = String(cString: strerror(errno))
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot rename the temporary file into place: \(reason)")
    }
    let dir = URL(fileURLWithPath: to).deletingLastPathComponent().path
    let fd = open(dir, O_RDONLY)
    if fd >= 0 { _ = fsync(fd); close(fd) }
}

// MARK: - Streaming safetensors writer

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
