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
        /// `K/N` for a shard of the index (`Shard` over chunks: the chunks c with c mod N = K − 1),
        /// nil for a whole index.
        public var shard: String?

        enum CodingKeys: String, CodingKey {
            case format, corpus, model, corpusFingerprint = "corpus_fingerprint", modelFingerprint = "model_fingerprint"
            case maxLength = "max_length", count, dimension, chunk, engineVersion = "engine_version", complete, shard
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
        if let shard = m.shard {
            throw GradNormIRError.invalidInput("\(folder): shard \(shard) of an index; `gradnormir merge` its shards into one index first")
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
        let ids = try readIds(idsPath)
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
                             folder: String, startOver: Bool = false, shard: Shard? = nil,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        let m = try retriever.validatedMaxLength(maxLength)
        var target = expectedManifest(documents: documents, corpus: corpus, retriever: retriever, maxLength: m)
        target.shard = shard?.description
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
            var changed = old.differences(from: target)
            if old.shard != target.shard { changed.append("it is shard \(old.shard ?? "none (a whole index)"), this run \(target.shard ?? "none (a whole index)")") }
            guard changed.isEmpty else {
                throw GradNormIRError.resumeMismatch(path: folder, reason: "holds another index: " + changed.joined(separator: "; "))
            }
            if old.complete { return 0 }
        } else {
            try writeFileAtomically(manifestPath, try encoded(building))
        }
        // This run's chunks (all, or a shard's); complete chunks already written are kept, a torn
        // one is cut off.
        let rowBytes = 4 * target.dimension
        let chunks = chunkRanges(count: target.count, chunk: target.chunk, shard: shard)
        let rowCount = chunks.reduce(0) { $0 + $1.count }
        let fd = open(partialPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw GradNormIRError.io(path: partialPath, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        var keptChunks = 0, keptRows = 0
        while keptChunks < chunks.count && (keptRows + chunks[keptChunks].count) * rowBytes <= size {
            keptRows += chunks[keptChunks].count
            keptChunks += 1
        }
        guard ftruncate(fd, off_t(keptRows * rowBytes)) == 0, lseek(fd, off_t(keptRows * rowBytes), SEEK_SET) >= 0 else {
            throw GradNormIRError.io(path: partialPath, reason: "cannot cut the torn chunk: \(String(cString: strerror(errno)))")
        }
        let ids = documents.map { retriever.tokenizer.encode($0.fullText, maxLength: m) }
        var done = keptRows
        progress(done, rowCount)
        for range in chunks[keptChunks...] {
            // One chunk of `Retriever.corpusEmbeddings`: the same call, so the same bits.
            let rows = retriever.corpusEmbeddings(ids: Array(ids[range]))
            var bytes = [Float]()
            bytes.reserveCapacity(range.count * target.dimension)
            for r in rows { bytes += r }
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: partialPath) }
            guard fsync(fd) == 0 else { throw GradNormIRError.io(path: partialPath, reason: "fsync failed: \(String(cString: strerror(errno)))") }
            done += range.count
            progress(done, rowCount)
        }
        // Finish: the matrix, the ids, then the manifest that says it is complete.
        let all = try mapFile(partialPath)
        var flat = [Float](repeating: 0, count: rowCount * target.dimension)
        _ = flat.withUnsafeMutableBytes { all.copyBytes(to: $0) }
        try writeFinished(folder: folder, manifest: target, ids: chunks.flatMap { $0.map { documents[$0].id } }, rows: flat)
        try? fm.removeItem(atPath: partialPath)
        return rowCount - keptRows
    }

    /// The corpus rows of each chunk a build embeds: every chunk, or a shard's (chunks c with
    /// c mod N = K − 1), in order.
    static func chunkRanges(count: Int, chunk: Int, shard: Shard?) -> [Range<Int>] {
        let all = stride(from: 0, to: count, by: chunk).map { $0..<min(count, $0 + chunk) }
        return shard.map { $0.part(of: all) } ?? all
    }

    /// Writes the final files of an index (or shard): the matrix, the ids, then the manifest.
    static func writeFinished(folder: String, manifest: Manifest, ids: [String], rows flat: [Float]) throws {
        try SafeTensorsFile.write(tensors: [("embeddings", [ids.count, manifest.dimension], flat)],
                                  metadata: ["format": "gradnormir-index"], to: file(folder, "embeddings.safetensors"))
        let idLines = ids.map { JSONLines.quote($0) + "\n" }.joined()
        try writeFileAtomically(file(folder, "ids.jsonl"), Data(idLines.utf8))
        try writeFileAtomically(file(folder, "index.json"), try encoded(manifest))
    }

    /// Joins the N shard folders of one index into `out`, the folder a single `build` writes
    /// (the same bytes). Refused, naming the shard: a folder that is not a finished shard, shards
    /// of different indexes or splits, a shard missing or given twice. Returns false when `out`
    /// already holds the finished index of the same corpus and model.
    @discardableResult
    public static func merge(shards folders: [String], out: String) throws -> Bool {
        var parts: [(folder: String, shard: Shard, manifest: Manifest)] = []
        for f in folders {
            let path = file(f, "index.json")
            guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
            guard let m = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw GradNormIRError.malformedJSON(path: path, line: nil, reason: "not an index manifest from `gradnormir index`")
            }
            guard let text = m.shard else { throw GradNormIRError.invalidInput("\(f): a whole index, not a shard (built whole, not by shards)") }
            guard m.complete else { throw GradNormIRError.invalidInput("\(f): shard \(text) is not finished (rerun its `gradnormir index`)") }
            parts.append((f, try Shard(parsing: text), m))
        }
        guard let first = parts.first else { throw GradNormIRError.invalidInput("no shard folders to merge") }
        let n = first.shard.count
        var byIndex: [Int: (folder: String, shard: Shard, manifest: Manifest)] = [:]
        for p in parts {
            var changed = p.manifest.differences(from: first.manifest)
            if p.shard.count != n { changed.append("it is shard \(p.shard), of another split than \(first.shard)") }
            guard changed.isEmpty else {
                throw GradNormIRError.invalidInput("\(p.folder): not a shard of the same index as \(first.folder): " + changed.joined(separator: "; "))
            }
            if let other = byIndex[p.shard.index] {
                throw GradNormIRError.invalidInput("shard \(p.shard) is given twice: \(other.folder) and \(p.folder)")
            }
            byIndex[p.shard.index] = p
        }
        if let missing = (1...n).first(where: { byIndex[$0] == nil }) {
            throw GradNormIRError.invalidInput("shard \(missing)/\(n) of the index is missing")
        }
        var whole = first.manifest
        whole.shard = nil
        let d = whole.dimension
        var flat = [Float](repeating: 0, count: whole.count * d)
        var ids = [String](repeating: "", count: whole.count)
        for k in 1...n {
            let p = byIndex[k]!
            let ranges = chunkRanges(count: whole.count, chunk: whole.chunk, shard: p.shard)
            let rowCount = ranges.reduce(0) { $0 + $1.count }
            let tensorPath = file(p.folder, "embeddings.safetensors")
            let tensors = try SafeTensorsFile(path: tensorPath)
            guard let info = tensors.info("embeddings"), info.shape == [rowCount, d] else {
                throw GradNormIRError.checkpoint(path: tensorPath, tensor: "embeddings", reason: "missing, or not of shape [\(rowCount), \(d)]")
            }
            let rows = try tensors.floats("embeddings")
            let idsPath = file(p.folder, "ids.jsonl")
            let shardIds = try readIds(idsPath)
            guard shardIds.count == rowCount else {
                throw GradNormIRError.invalidInput("\(idsPath): \(shardIds.count) ids for a shard of \(rowCount) documents")
            }
            var r = 0
            for range in ranges {
                for row in range {
                    for j in 0..<d { flat[row * d + j] = rows[r * d + j] }
                    ids[row] = shardIds[r]
                    r += 1
                }
            }
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let lock = try OutputLock(path: OutputLock.path(forFolder: out))
        defer { withExtendedLifetime(lock) {} }
        if let data = fm.contents(atPath: file(out, "index.json")) {
            guard let old = try? JSONDecoder().decode(Manifest.self, from: data), old.complete, old.shard == nil,
                  old.differences(from: whole).isEmpty else {
                throw GradNormIRError.invalidInput("\(out) holds another index or an unfinished one; refusing to overwrite it")
            }
            return false
        }
        try writeFinished(folder: out, manifest: whole, ids: ids, rows: flat)
        return true
    }

    /// The document ids of an index's `ids.jsonl`, one JSON string per line.
    static func readIds(_ path: String) throws -> [String] {
        var ids: [String] = []
        try JSONLines.forEachLine(in: try mapFile(path)) { line, bytes in
            guard let id = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "expected a JSON string (a document id)")
            }
            ids.append(id)
        }
        return ids
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
