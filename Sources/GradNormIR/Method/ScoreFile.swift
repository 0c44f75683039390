import Foundation

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
            mismatch: "exists but was written with other settings (or without \(metaPath))"
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

    /// The settings line of a score file's sidecar: the corpus, its size, which documents are
    /// scored (`"all"`, `"first N"`, `"sample N"`), the model folder and the scoring config
    /// (its JSON with sorted keys).
    public static func settings(corpus: String, documents: Int, scored: String, model: String,
                                config: ScoringConfig) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(config), as: UTF8.self)
        return "{\"corpus\": \(JSONLines.quote(corpus)), \"documents\": \(documents), "
            + "\"scored\": \(JSONLines.quote(scored)), \"model\": \(JSONLines.quote(model)), \"config\": \(json)}"
    }

    /// Reads a score file: one (id, score or nil) per line, in file order. Errors name the file
    /// and the line.
    public static func read(_ path: String) throws -> [(id: String, score: Double?)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
        var out: [(String, Double?)] = []
        try JSONLines.forEachObject(in: data, source: path) { line, obj in
            guard let id = obj["_id"] as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "missing string field \"_id\"")
            }
            let v = obj["gradnorm"]
            if v == nil || v is NSNull {
                out.append((id, nil))
            } else if let n = v as? NSNumber, n.doubleValue.isFinite {
                out.append((id, n.doubleValue))
            } else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "\"gradnorm\" must be a finite number or null")
            }
        }
        return out
    }

    /// The settings recorded beside the score file `path` (its sidecar), if there are any.
    public static func recordedSettings(of path: String) -> String? {
        FileManager.default.contents(atPath: path + ".meta.json").map { String(decoding: $0, as: UTF8.self) }
    }
}
