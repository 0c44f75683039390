import Foundation

/// What a score file was computed from, recorded in its sidecar `FILE.meta.json`. A resumed run
/// compares the content fingerprints, the sizes and the scoring settings — never the paths, which
/// are kept for people (`corpus/` and `./corpus` are the same corpus; an edited corpus at the same
/// path is not).
public struct ScoreSettings: Codable, Sendable, Equatable {
    /// The corpus as given (not compared).
    public var corpus: String
    /// `Fingerprint.of(documents:)`: every document's id, title and text, in order.
    public var corpusFingerprint: String
    /// Documents in the corpus (the index).
    public var documents: Int
    /// Which documents are scored: `all`, `first N` or `sample N`.
    public var scored: String
    /// The model folder (not compared).
    public var model: String
    /// `Retriever.fingerprint`: weights, configuration, vocabulary, tokenizer settings.
    public var modelFingerprint: String
    public var config: ScoringConfig
    /// The detector of a `gradnormir predict` file (nil for a `gradnormir score` file).
    public var detector: String?
    /// The content fingerprint of the in-distribution reference a detector was fitted on, if any.
    public var referenceFingerprint: String?
    /// The run's shard (`K/N`, see `Shard`), and the number of documents of the whole run, when sharded.
    public var shard: String?
    public var selected: Int?

    public init(corpus: String, corpusFingerprint: String, documents: Int, scored: String, model: String,
                modelFingerprint: String, config: ScoringConfig) {
        self.corpus = corpus
        self.corpusFingerprint = corpusFingerprint
        self.documents = documents
        self.scored = scored
        self.model = model
        self.modelFingerprint = modelFingerprint
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case corpus, corpusFingerprint = "corpus_fingerprint", documents, scored, model
        case modelFingerprint = "model_fingerprint", config, detector, referenceFingerprint = "reference_fingerprint", shard, selected
    }

    /// The sidecar's text: compact JSON, keys sorted.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(self), as: UTF8.self) } catch {
            preconditionFailure("ScoreSettings: \(error)")  // strings, numbers and a config always encode
        }
    }

    /// Settings read back from a sidecar's text; nil for a file that is not one (or was written
    /// by a version without fingerprints).
    public static func decode(_ text: String) -> ScoreSettings? {
        try? JSONDecoder().decode(ScoreSettings.self, from: Data(text.utf8))
    }

    /// In words, what differs between `recorded` and these settings, paths aside: empty when a
    /// run with these settings may resume a file written with `recorded`.
    public func differences(from recorded: ScoreSettings) -> [String] {
        var out: [String] = []
        if recorded.corpusFingerprint != corpusFingerprint || recorded.documents != documents {
            out.append("the corpus changed (\(recorded.documents) documents, fingerprint \(recorded.corpusFingerprint); "
                       + "now \(documents), \(corpusFingerprint))")
        }
        if recorded.modelFingerprint != modelFingerprint {
            out.append("the model changed (fingerprint \(recorded.modelFingerprint), now \(modelFingerprint))")
        }
        if recorded.scored != scored { out.append("the documents scored were '\(recorded.scored)', now '\(scored)'") }
        if recorded.config != config { out.append("scoring settings " + Self.changes(from: recorded.config, to: config)) }
        if recorded.detector != detector {
            out.append("the detector was '\(recorded.detector ?? "gradnormir score")', now '\(detector ?? "gradnormir score")'")
        }
        if recorded.shard != shard { out.append("the shard was \(recorded.shard ?? "none"), now \(shard ?? "none")") }
        if recorded.referenceFingerprint != referenceFingerprint {
            out.append("the reference changed (fingerprint \(recorded.referenceFingerprint ?? "none"), now \(referenceFingerprint ?? "none"))")
        }
        return out
    }

    /// `name old → new` for each setting that differs.
    static func changes(from a: ScoringConfig, to b: ScoringConfig) -> String {
        func fields(_ c: ScoringConfig) -> [String: String] {
            let encoder = JSONEncoder()
            guard let data = try? encoder.encode(c),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return object.mapValues { "\($0)" }
        }
        let x = fields(a), y = fields(b)
        return Set(x.keys).union(y.keys).sorted().compactMap { k in
            x[k] == y[k] ? nil : "\(k) \(x[k] ?? "default") → \(y[k] ?? "default")"
        }.joined(separator: ", ")
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

    /// Opens `path` for a run that will score `expectedIds` in this order with `settings`,
    /// recorded in the sidecar `path.meta.json`. Resuming a file whose recorded settings differ
    /// (other corpus content, model, documents scored or scoring settings) is refused with
    /// `.resumeMismatch` naming what changed; so is a file whose lines are not a prefix of
    /// `expectedIds`.
    public init(path: String, expectedIds: [String], settings: ScoreSettings) throws {
        self.path = path
        let metaPath = path + ".meta.json"
        var ids: [String] = []
        lines = try ResumableLines(
            path: path, metaPath: metaPath, meta: settings.json, mismatch: "",
            differences: { ScoreSettings.decode($0).map(settings.differences(from:)) }
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

    /// Reads a score file of `gradnormir score` or `gradnormir predict`: one (id, score or nil)
    /// per line, in file order. Every line must have an `_id` and either a `gradnorm` (a score
    /// file: a non-negative finite number or null) or an `ood_score` (a prediction file: a finite
    /// number or null), and no id may repeat. Errors name the file and the line.
    public static func read(_ path: String) throws -> [(id: String, score: Double?)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
        var out: [(String, Double?)] = []
        var seen: [String: Int] = [:]
        try JSONLines.forEachObject(in: data, source: path) { line, obj in
            guard let id = obj["_id"] as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "missing string field \"_id\"")
            }
            let field = obj.keys.contains("gradnorm") ? "gradnorm" : "ood_score"
            guard obj.keys.contains(field) else {
                throw GradNormIRError.malformedJSON(
                    path: path, line: line,
                    reason: "no field \"gradnorm\" or \"ood_score\": not a score file from `gradnormir score` or `gradnormir predict`")
            }
            if let first = seen[id] {
                throw GradNormIRError.badRecord(path: path, line: line, reason: "document '\(id)' again (first on line \(first))")
            }
            seen[id] = line
            let v = obj[field]
            if v is NSNull {
                out.append((id, nil))
            } else if let n = v as? NSNumber, !(String(cString: n.objCType) == "c"), n.doubleValue.isFinite,
                      field == "ood_score" || n.doubleValue >= 0 {
                out.append((id, n.doubleValue))
            } else {
                let range = field == "gradnorm" ? "a non-negative finite number" : "a finite number"
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "\"\(field)\" must be \(range) or null")
            }
        }
        return out
    }

    /// The settings recorded beside the score file `path` (its sidecar), if there are any.
    public static func recordedSettings(of path: String) -> String? {
        FileManager.default.contents(atPath: path + ".meta.json").map { String(decoding: $0, as: UTF8.self) }
    }
}
