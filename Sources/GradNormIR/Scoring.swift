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
    private let lines: ResumableLines

    /// Opens `path` for a run that will score `expectedIds` in this order with settings `meta`
    /// (any Codable-free description string, e.g. the JSON of the config). A sidecar
    /// `path.meta.json` holds `meta`; resuming with other settings, or a file whose lines are not
    /// a prefix of `expectedIds`, is refused with an error naming the file.
    public init(path: String, expectedIds: [String], meta: String) throws {
        self.path = path
        let metaPath = path + ".meta.json"
        var ids: [String] = []
        lines = try ResumableLines(
            path: path, metaPath: metaPath, meta: meta,
            mismatch: "\(path) exists but was written with other settings (or without \(metaPath)): "
                + "use the same arguments to resume, or another --out"
        ) { line, data in
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let id = obj["_id"] as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "not a score line; refusing to resume")
            }
            guard ids.count < expectedIds.count, expectedIds[ids.count] == id else {
                throw GradNormIRError.invalidInput(
                    "\(path):\(line): document '\(id)' is not the next one of this corpus in order; refusing to resume")
            }
            ids.append(id)
        }
        done = ids
    }

    /// Appends one line and forces it to disk.
    public func append(_ line: String) throws { try lines.append(line) }
}
