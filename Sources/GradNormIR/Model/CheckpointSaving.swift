import Foundation
import TransformerLite

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
