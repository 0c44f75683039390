import Foundation
import TransformerLite

/// A corpus embedded once and kept on disk, so that every command that needs the corpus's search
/// embeddings (`score`, `evaluate`, `recall`, the bench) reads them instead of encoding the corpus
/// again. A folder:
///
///     embeddings.safetensors   one F32 tensor "embeddings" (count, dimension), row i = document i
///     ids.jsonl                the document ids in corpus order, one JSON string a line
///     index.json               what it was built from (`EmbeddingIndex.Manifest`)
///
/// The embeddings are `Retriever.corpusEmbeddings` of the documents' token ids at `maxLength`:
/// the same bits as a command that embeds the corpus itself (same engine threads). A build is
/// resumable: rows go to `embeddings.partial` a chunk at a time (appended, forced to disk), and
/// a rerun after a kill keeps the complete chunks and goes on; the finished files are written
/// atomically and the partial file removed.
public struct EmbeddingIndex {
    /// What an index was built from. Loading compares the fingerprints, the maximum length and
    /// the size with the caller's corpus and model, never the paths.
    public struct Manifest: Codable, Sendable, Equatable {
        public var format = 1
        /// The corpus and model as given when it was built (for people; not compared).
        public var corpus: String
        public var model: String
        public var corpusFingerprint: String
        public var modelFingerprint: String
        public var maxLength: Int
        public var count: Int
        public var dimension: Int
        /// Documents per embedding call (`Retriever.corpusChunk`).
        public var chunk: Int
        public var engineVersion: String
        /// Rows written so far (= count once complete) and whether the final files are in place.
        public var complete: Bool

        enum CodingKeys: String, CodingKey {
            case format, corpus, model, corpusFingerprint = "corpus_fingerprint", modelFingerprint = "model_fingerprint"
            case maxLength = "max_length", count, dimension, chunk, engineVersion = "engine_version", complete
        }

        /// In words, what differs between this (recorded) index and `other` (this run), paths aside.
        public func differences(from other: Manifest) -> [String] {
            var out: [String] = []
            if corpusFingerprint != other.corpusFingerprint || count != other.count {
                out.append("it was built from another corpus (\(count) documents, fingerprint \(corpusFingerprint); "
                           + "this corpus: \(other.count), \(other.corpusFingerprint))")
            }
            if modelFingerprint != other.modelFingerprint || dimension != other.dimension {
                out.append("it was built with another model (fingerprint \(modelFingerprint); this model: \(other.modelFingerprint))")
            }
            if maxLength != other.maxLength { out.append("it was built at max length \(maxLength), this run uses \(other.maxLength)") }
            if chunk != other.chunk || format != other.format {
                out.append("it was built by another engine version (\(engineVersion))")
            }
            return out
        }
    }

    /// The version written into every index (the layout of its files and of the embedding calls).
    public static let engineVersion = "gradnormir 0.3 (chunks of \(Retriever.corpusChunk), packed batches)"

    public let folder: String
    public let manifest: Manifest
    /// The document ids, in corpus order.
    public let ids: [String]
    /// The embeddings, (count, dimension), row i = document i.
    public let embeddings: [[Float]]

    static func file(_ folder: String, _ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

    /// The manifest an index of `documents` embedded by `retriever` at `maxLength` must have.
    static func expectedManifest(documents: [Document], corpus: String, retriever: Retriever,
                                        maxLength: Int) -> Manifest {
        Manifest(corpus: corpus, model: retriever.checkpoint.folder, corpusFingerprint: Fingerprint.of(documents: documents),
                 modelFingerprint: retriever.fingerprint, maxLength: maxLength, count: documents.count,
                 dimension: retriever.config.hiddenSize, chunk: Retriever.corpusChunk, engineVersion: engineVersion,
                 complete: true)
    }

    /// Loads the index in `folder` for `documents` embedded by `retriever` at `maxLength` (nil:
    /// the model's default), refusing one that is incomplete or was built from other documents,
    /// another model or another maximum length (the message names what differs).
    public static func load(folder: String, documents: [Document], retriever: Retriever,
                            maxLength: Int?) throws -> EmbeddingIndex {
        let expected = expectedManifest(documents: documents, corpus: "", retriever: retriever,
                                        maxLength: try retriever.validatedMaxLength(maxLength))
        let manifestPath = file(folder, "index.json")
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw GradNormIRError.fileNotFound(path: manifestPath)
        }
        guard let m = try? JSONDecoder().decode(Manifest.self, from: data) else {
            throw GradNormIRError.malformedJSON(path: manifestPath, line: nil, reason: "not an index manifest from `gradnormir index`")
        }
        guard m.complete else {
            throw GradNormIRError.invalidInput("\(folder): the index is not finished (rerun `gradnormir index` to complete it)")
        }
        let changed = m.differences(from: expected)
        guard changed.isEmpty else {
            throw GradNormIRError.invalidInput("\(folder): cannot be used: " + changed.joined(separator: "; "))
        }
        let tensors = try SafeTensorsFile(path: file(folder, "embeddings.safetensors"))
        guard let info = tensors.info("embeddings"), info.shape == [m.count, m.dimension] else {
            throw GradNormIRError.checkpoint(path: file(folder, "embeddings.safetensors"), tensor: "embeddings",
                                             reason: "missing, or not of shape [\(m.count), \(m.dimension)]")
        }
        let flat = try tensors.floats("embeddings")
        let rows = (0..<m.count).map { Array(flat[($0 * m.dimension)..<(($0 + 1) * m.dimension)]) }
        let idsPath = file(folder, "ids.jsonl")
        var ids: [String] = []
        try JSONLines.forEachLine(in: try mapFile(idsPath)) { line, bytes in
            guard let id = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? String else {
                throw GradNormIRError.malformedJSON(path: idsPath, line: line, reason: "expected a JSON string (a document id)")
            }
            ids.append(id)
        }
        guard ids.count == m.count else {
            throw GradNormIRError.invalidInput("\(idsPath): \(ids.count) ids for an index of \(m.count) documents")
        }
        return EmbeddingIndex(folder: folder, manifest: m, ids: ids, embeddings: rows)
    }

    /// Builds (or finishes) the index of `documents` in `folder`; `progress(done, total)` after
    /// every chunk. A folder holding an index built from other inputs is refused (naming what
    /// differs) unless `startOver`. Returns the number of documents embedded by this call.
    @discardableResult
    public static func build(documents: [Document], corpus: String, retriever: Retriever, maxLength: Int,
                             folder: String, startOver: Bool = false,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        let m = try retriever.validatedMaxLength(maxLength)
        let target = expectedManifest(documents: documents, corpus: corpus, retriever: retriever, maxLength: m)
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let manifestPath = file(folder, "index.json"), partialPath = file(folder, "embeddings.partial")
        if startOver {
            for name in ["index.json", "embeddings.partial", "embeddings.safetensors", "ids.jsonl"] {
                try? fm.removeItem(atPath: file(folder, name))
            }
        }
        var building = target
        building.complete = false
        if let data = fm.contents(atPath: manifestPath) {
            guard let old = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw GradNormIRError.resumeMismatch(path: manifestPath, reason: "is not an index manifest this version writes")
            }
            let changed = old.differences(from: target)
            guard changed.isEmpty else {
                throw GradNormIRError.resumeMismatch(path: folder, reason: "holds another index: " + changed.joined(separator: "; "))
            }
            if old.complete { return 0 }
        } else {
            try writeFileAtomically(manifestPath, try encoded(building))
        }
        // Complete chunks already written are kept; a torn chunk is cut off.
        let rowBytes = 4 * target.dimension, chunkBytes = rowBytes * target.chunk
        let fd = open(partialPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw GradNormIRError.io(path: partialPath, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        let keptRows = min(target.count, (size / chunkBytes) * target.chunk)
        guard ftruncate(fd, off_t(keptRows * rowBytes)) == 0, lseek(fd, off_t(keptRows * rowBytes), SEEK_SET) >= 0 else {
            throw GradNormIRError.io(path: partialPath, reason: "cannot cut the torn chunk: \(String(cString: strerror(errno)))")
        }
        let ids = documents.map { retriever.tokenizer.encode($0.fullText, maxLength: m) }
        var start = keptRows
        progress(start, target.count)
        while start < target.count {
            let end = min(target.count, start + target.chunk)
            // One chunk of `Retriever.corpusEmbeddings`: the same call, so the same bits.
            let rows = retriever.corpusEmbeddings(ids: Array(ids[start..<end]))
            var bytes = [Float]()
            bytes.reserveCapacity((end - start) * target.dimension)
            for r in rows { bytes += r }
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: partialPath) }
            guard fsync(fd) == 0 else { throw GradNormIRError.io(path: partialPath, reason: "fsync failed: \(String(cString: strerror(errno)))") }
            start = end
            progress(start, target.count)
        }
        // Finish: the matrix, the ids, then the manifest that says it is complete.
        let all = try mapFile(partialPath)
        var flat = [Float](repeating: 0, count: target.count * target.dimension)
        _ = flat.withUnsafeMutableBytes { all.copyBytes(to: $0) }
        try SafeTensorsFile.write(tensors: [("embeddings", [target.count, target.dimension], flat)],
                                  metadata: ["format": "gradnormir-index"], to: file(folder, "embeddings.safetensors"))
        let idLines = documents.map { JSONLines.quote($0.id) + "\n" }.joined()
        try writeFileAtomically(file(folder, "ids.jsonl"), Data(idLines.utf8))
        try writeFileAtomically(manifestPath, try encoded(target))
        try? fm.removeItem(atPath: partialPath)
        return target.count - keptRows
    }

    static func encoded(_ m: Manifest) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(m) + Data("\n".utf8)
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var written = 0
        while written < bytes.count {
            let r = write(fd, bytes.baseAddress! + written, bytes.count - written)
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { throw GradNormIRError.io(path: path, reason: "write failed: \(String(cString: strerror(errno)))") }
            written += r
        }
    }
}
