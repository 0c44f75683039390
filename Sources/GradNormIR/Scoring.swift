import Foundation
import TransformerLite

/// The GradNormIR score of one document (METHOD.md step 6).
public struct DocumentScore: Sendable, Equatable {
    public let id: String
    /// Mean of the record gradient norms; nil when the document has no valid record.
    public let gradNorm: Double?
    /// Number of valid records averaged.
    public let records: Int
    /// Mean InfoNCE loss of the records (nil with no record).
    public let meanLoss: Double?
    /// Why the document is unscored (nil when scored).
    public let reason: String?

    /// The JSON line written for it: `{"_id", "gradnorm" (number or null), "records", "loss"[, "reason"]}`.
    public var jsonLine: String {
        var s = "{\"_id\": \(JSONLines.quote(id)), \"gradnorm\": \(gradNorm.map { "\($0)" } ?? "null"), "
            + "\"records\": \(records), \"loss\": \(meanLoss.map { "\($0)" } ?? "null")"
        if let reason { s += ", \"reason\": \(JSONLines.quote(reason))" }
        return s + "}"
    }
}

/// Scores documents of a corpus: positives by dropout self-retrieval, hard negatives from the
/// positives' neighbourhoods, and the mean record gradient norm. One scorer per thread.
public final class GradNormScorer {
    public let corpus: CorpusIndex
    private let records: RecordGradient

    public init(retriever: Retriever, corpus: CorpusIndex) {
        self.corpus = corpus
        self.records = RecordGradient(retriever: retriever)
    }

    /// Scores document `d` of the corpus (deterministic: its dropout mask depends only on the
    /// config's seed and d).
    public func score(document d: Int, id: String) -> DocumentScore {
        let pos = corpus.positives(of: d, encoder: records.encoder)
        let plans = corpus.records(of: d, positives: pos)
        if plans.isEmpty {
            let reason = pos.isEmpty ? "no positive: the corpus has no other document"
                : "no positive has \(corpus.config.negatives) negatives outside the document's neighbourhood"
            return DocumentScore(id: id, gradNorm: nil, records: 0, meanLoss: nil, reason: reason)
        }
        var norm = 0.0, loss = 0.0
        for p in plans {
            let r = records.compute(query: corpus.ids[d], positive: corpus.ids[p.positive],
                                    negatives: p.negatives.map { corpus.ids[$0] },
                                    temperature: corpus.config.temperature)
            norm += r.gradNorm
            loss += r.loss
        }
        let k = Double(plans.count)
        guard norm.isFinite, loss.isFinite else {
            return DocumentScore(id: id, gradNorm: nil, records: plans.count, meanLoss: nil,
                                 reason: "non-finite loss or gradient")
        }
        return DocumentScore(id: id, gradNorm: norm / k, records: plans.count, meanLoss: loss / k, reason: nil)
    }
}

/// A JSON-lines score file written one document at a time, durably (each line is written in one
/// call and flushed to disk), that a rerun with the same settings resumes: complete lines are
/// kept, a torn last line is cut off, and scoring continues with the next document.
public final class ScoreFile {
    public let path: String
    /// Ids already scored (the file's complete lines), in order.
    public private(set) var done: [String]
    private let fd: Int32

    /// Opens `path` for a run that will score `expectedIds` in this order with settings `meta`
    /// (any Codable-free description string, e.g. the JSON of the config). A sidecar
    /// `path.meta.json` holds `meta`; resuming with other settings, or a file whose lines are not
    /// a prefix of `expectedIds`, is refused with an error naming the file.
    public init(path: String, expectedIds: [String], meta: String) throws {
        self.path = path
        let metaPath = path + ".meta.json"
        let fm = FileManager.default
        var existing = Data()
        if fm.fileExists(atPath: path) {
            guard let m = fm.contents(atPath: metaPath), String(decoding: m, as: UTF8.self) == meta else {
                throw GradNormIRError.invalidInput(
                    "\(path) exists but was written with other settings (or without \(metaPath)): "
                    + "use the same arguments to resume, or another --out")
            }
            existing = fm.contents(atPath: path) ?? Data()
        } else {
            try Data(meta.utf8).write(to: URL(fileURLWithPath: metaPath), options: .atomic)
        }
        // Keep the complete lines only.
        var keep = 0
        var ids: [String] = []
        var start = existing.startIndex
        var line = 0
        while let nl = existing[start...].firstIndex(of: UInt8(ascii: "\n")) {
            line += 1
            let slice = existing[start..<nl]
            guard let obj = try? JSONSerialization.jsonObject(with: Data(slice)) as? [String: Any],
                  let id = obj["_id"] as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "not a score line; refusing to resume")
            }
            guard ids.count < expectedIds.count, expectedIds[ids.count] == id else {
                throw GradNormIRError.invalidInput(
                    "\(path):\(line): document '\(id)' is not the next one of this corpus in order; refusing to resume")
            }
            ids.append(id)
            start = existing.index(after: nl)
            keep = start - existing.startIndex
        }
        done = ids
        fd = open(path, O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw GradNormIRError.io(path: path, reason: "cannot open for writing") }
        guard ftruncate(fd, off_t(keep)) == 0, lseek(fd, off_t(keep), SEEK_SET) == off_t(keep) else {
            close(fd)
            throw GradNormIRError.io(path: path, reason: "cannot truncate the torn last line")
        }
    }

    deinit { close(fd) }

    /// Appends one line and forces it to disk.
    public func append(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let r = bytes[written...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            guard r > 0 else { throw GradNormIRError.io(path: path, reason: "write failed") }
            written += r
        }
        guard fsync(fd) == 0 else { throw GradNormIRError.io(path: path, reason: "fsync failed") }
    }
}
