import Foundation

/// One corpus document in the BEIR layout (`{"_id", "title", "text"}`).
public struct Document: Sendable, Equatable {
    public let id: String
    /// Empty when the line has no title (absent, `null` or `""`).
    public let title: String
    public let text: String

    public init(id: String, title: String, text: String) {
        self.id = id
        self.title = title
        self.text = text
    }

    /// What gets embedded: `title + " " + text` when the title is non-empty, else `text` (the BEIR
    /// convention, the same as `JSONLines.readTextRecords`).
    public var fullText: String { title.isEmpty ? text : title + " " + text }
}

/// One query of `queries.jsonl` (`{"_id", "text"}`; other fields such as `metadata` are ignored).
public struct Query: Sendable, Equatable {
    public let id: String
    public let text: String

    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}


/// A BEIR-style dataset folder: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
///
/// Ground truth (METHOD.md, "Ground truth and metrics"): a (query, document) pair is relevant iff
/// its qrels score is ≥ 1. Ids are strings everywhere (numeric JSON ids are converted, `12` → `"12"`).
///
/// Validation, per line, with the file and 1-based line in every error: invalid UTF-8, malformed
/// JSON, missing or ill-typed fields, empty id, empty document (title and text only whitespace),
/// a document larger than `maxDocumentBytes` UTF-8 bytes, duplicate document or query id, empty
/// query, qrels lines without exactly 3 tab-separated columns, non-integer score, empty or unknown
/// query/document id, duplicate (query, document) judgement. With `.fail` the first such line
/// throws; with `.skip` it is left out and counted in `skippedLines` (and `skippedByFile`). A
/// missing file throws `.fileNotFound`. Blank lines are ignored (but counted in line numbers).
public struct BEIRDataset: Sendable {
    /// Largest accepted document (`fullText`), in UTF-8 bytes.
    public static let maxDocumentBytes = 1_000_000

    /// The dataset folder as given.
    public let folder: String
    public let corpus: [Document]
    public let queries: [Query]
    /// query id → document id → score, every judged pair (scores < 1 included).
    public let qrels: [String: [String: Int]]
    /// The qrels file that was read (e.g. `<folder>/qrels/test.tsv`).
    public let qrelsPath: String
    /// Lines left out under `.skip` (always 0 under `.fail`), over all three files.
    public let skippedLines: Int
    /// The same count per file path; files with no skipped line are absent.
    public let skippedByFile: [String: Int]
    /// Document id → position in `corpus`.
    public let documentIndex: [String: Int]
    /// Query id → position in `queries`.
    public let queryIndex: [String: Int]

    /// Relevant (score ≥ 1) document ids per query id, in qrels file order.
    private let relevantByQuery: [String: [String]]
    /// Relevant query ids per document id, in qrels file order.
    private let relevantByDocument: [String: [String]]

    /// The documents judged relevant (score ≥ 1) to `queryId`, in qrels file order; empty if none.
    public func relevantDocuments(of queryId: String) -> [String] { relevantByQuery[queryId] ?? [] }

    /// The queries to which `documentId` is relevant (score ≥ 1), in qrels file order; nq(d) of
    /// METHOD.md is its count.
    public func relevantQueries(of documentId: String) -> [String] { relevantByDocument[documentId] ?? [] }

    // MARK: Loading

    /// Reads `folder/corpus.jsonl`, `folder/queries.jsonl` and `folder/qrels/<split>.tsv`.
    ///
    /// `split` names the qrels file (`"dev"` or `"dev.tsv"`); by default `test.tsv` if present,
    /// else the only `.tsv` in `qrels/`, else an error listing what is there.
    public static func load(folder: String, onBadLine: BadLinePolicy = .fail,
                            split: String? = nil) throws -> BEIRDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw GradNormIRError.fileNotFound(path: folder)
        }
        guard isDir.boolValue else {
            throw GradNormIRError.io(path: folder, reason: "is a file, expected a BEIR dataset folder")
        }
        let corpusPath = join(folder, "corpus.jsonl")
        let queriesPath = join(folder, "queries.jsonl")
        let qrelsPath = try qrelsFile(folder: folder, split: split)

        let (documents, skippedCorpus) = try loadCorpus(path: corpusPath, onBadLine: onBadLine)
        let (queries, skippedQueries) = try loadQueries(path: queriesPath, onBadLine: onBadLine)

        var documentIndex: [String: Int] = [:]
        documentIndex.reserveCapacity(documents.count)
        for (i, d) in documents.enumerated() { documentIndex[d.id] = i }
        var queryIndex: [String: Int] = [:]
        queryIndex.reserveCapacity(queries.count)
        for (i, q) in queries.enumerated() { queryIndex[q.id] = i }

        let qr = try loadQrels(path: qrelsPath, onBadLine: onBadLine,
                               isQuery: { queryIndex[$0] != nil }, isDocument: { documentIndex[$0] != nil })

        var byFile: [String: Int] = [:]
        if skippedCorpus > 0 { byFile[corpusPath] = skippedCorpus }
        if skippedQueries > 0 { byFile[queriesPath] = skippedQueries }
        if qr.skipped > 0 { byFile[qrelsPath] = qr.skipped }
        return BEIRDataset(folder: folder, corpus: documents, queries: queries, qrels: qr.scores,
                           qrelsPath: qrelsPath, skippedLines: skippedCorpus + skippedQueries + qr.skipped,
                           skippedByFile: byFile, documentIndex: documentIndex, queryIndex: queryIndex,
                           relevantByQuery: qr.relevantByQuery, relevantByDocument: qr.relevantByDocument)
    }

    /// Reads documents from a BEIR `corpus.jsonl` or any JSONL of `{"_id" | "id", "title"?, "text"}`
    /// (ids strings or integers). A folder `path` means `path/corpus.jsonl`. Throws when no document
    /// remains. `skipped` counts the lines left out under `.skip`.
    public static func loadCorpus(path: String, onBadLine: BadLinePolicy = .fail) throws
        -> (documents: [Document], skipped: Int) {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            ? join(path, "corpus.jsonl") : path
        let data = try mapFile(file)
        var documents: [Document] = []
        var firstLine: [String: Int] = [:]  // id → line of its first occurrence
        let skipped = try JSONLines.forEachObject(in: data, source: file, onBadLine: onBadLine) { line, obj in
            let doc = try decodeDocument(obj, path: file, line: line)
            if let first = firstLine[doc.id] {
                throw GradNormIRError.badRecord(path: file, line: line,
                                                reason: "duplicate document id '\(doc.id)' (first on line \(first))")
            }
            firstLine[doc.id] = line
            documents.append(doc)
        }
        guard !documents.isEmpty else {
            throw GradNormIRError.invalidInput("\(file): no documents" + (skipped > 0 ? " (\(skipped) bad lines skipped)" : ""))
        }
        return (documents, skipped)
    }

    /// Reads a BEIR `queries.jsonl` (`{"_id" | "id", "text"}`). Throws when no query remains.
    public static func loadQueries(path: String, onBadLine: BadLinePolicy = .fail) throws
        -> (queries: [Query], skipped: Int) {
        let data = try mapFile(path)
        var queries: [Query] = []
        var firstLine: [String: Int] = [:]
        let skipped = try JSONLines.forEachObject(in: data, source: path, onBadLine: onBadLine) { line, obj in
            let id = try decodeID(obj, path: path, line: line)
            let text = try stringField("text", of: obj, path: path, line: line)
            if text.allSatisfy(\.isWhitespace) {
                throw GradNormIRError.badRecord(path: path, line: line, reason: "empty query (id '\(id)')")
            }
            if let first = firstLine[id] {
                throw GradNormIRError.badRecord(path: path, line: line,
                                                reason: "duplicate query id '\(id)' (first on line \(first))")
            }
            firstLine[id] = line
            queries.append(Query(id: id, text: text))
        }
        guard !queries.isEmpty else {
            throw GradNormIRError.invalidInput("\(path): no queries" + (skipped > 0 ? " (\(skipped) bad lines skipped)" : ""))
        }
        return (queries, skipped)
    }

    // MARK: Qrels

    struct Qrels {
        var scores: [String: [String: Int]] = [:]
        var relevantByQuery: [String: [String]] = [:]
        var relevantByDocument: [String: [String]] = [:]
        var skipped = 0
    }

    /// Reads `qid \t did \t score` lines after an optional header (`query-id \t corpus-id \t score`,
    /// recognised on the first non-blank line by its third column `score`). Ids are kept verbatim.
    static func loadQrels(path: String, onBadLine: BadLinePolicy,
                          isQuery: (String) -> Bool, isDocument: (String) -> Bool) throws -> Qrels {
        let data = try mapFile(path)
        var out = Qrels()
        var judgements = 0
        var sawContent = false
        try JSONLines.forEachLine(in: data) { line, bytes in
            do {
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
                guard let text = String(bytes: bytes, encoding: .utf8) else {
                    throw GradNormIRError.invalidUTF8(path: path, line: line)
                }
                let columns = text.split(separator: "\t", omittingEmptySubsequences: false)
                let isFirst = !sawContent
                sawContent = true
                guard columns.count == 3 else {
                    throw GradNormIRError.badRecord(
                        path: path, line: line,
                        reason: "expected 3 tab-separated columns (query-id, corpus-id, score), found \(columns.count)")
                }
                let scoreText = columns[2].trimmingCharacters(in: .whitespaces)
                if isFirst && scoreText.lowercased() == "score" { return }  // header
                guard let score = Int(scoreText) else {
                    throw GradNormIRError.badRecord(path: path, line: line,
                                                    reason: "score '\(scoreText)' is not an integer")
                }
                let qid = String(columns[0]), did = String(columns[1])
                guard !qid.isEmpty else {
                    throw GradNormIRError.badRecord(path: path, line: line, reason: "empty query id")
                }
                guard !did.isEmpty else {
                    throw GradNormIRError.badRecord(path: path, line: line, reason: "empty corpus id")
                }
                guard isQuery(qid) else {
                    throw GradNormIRError.badRecord(path: path, line: line,
                                                    reason: "unknown query id '\(qid)' (not in queries.jsonl)")
                }
                guard isDocument(did) else {
                    throw GradNormIRError.badRecord(path: path, line: line,
                                                    reason: "unknown corpus id '\(did)' (not in corpus.jsonl)")
                }
                if let previous = out.scores[qid]?[did] {
                    throw GradNormIRError.badRecord(
                        path: path, line: line,
                        reason: "duplicate judgement of ('\(qid)', '\(did)') (earlier score \(previous))")
                }
                out.scores[qid, default: [:]][did] = score
                judgements += 1
                if score >= 1 {
                    out.relevantByQuery[qid, default: []].append(did)
                    out.relevantByDocument[did, default: []].append(qid)
                }
            } catch where onBadLine == .skip && error is GradNormIRError {
                out.skipped += 1
            }
        }
        guard judgements > 0 else {
            throw GradNormIRError.invalidInput(
                "\(path): no judgements" + (out.skipped > 0 ? " (\(out.skipped) bad lines skipped)" : ""))
        }
        return out
    }

    /// The qrels file for `split` (see `load`).
    static func qrelsFile(folder: String, split: String?) throws -> String {
        let dir = join(folder, "qrels")
        if let split {
            let path = join(dir, split.hasSuffix(".tsv") ? split : split + ".tsv")
            guard FileManager.default.fileExists(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
            return path
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw GradNormIRError.fileNotFound(path: dir)
        }
        let test = join(dir, "test.tsv")
        if FileManager.default.fileExists(atPath: test) { return test }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        } catch {
            throw GradNormIRError.io(path: dir, reason: "cannot list: \(error.localizedDescription)")
        }
        let tsv = entries.filter { $0.hasSuffix(".tsv") }
        if tsv.count == 1 { return join(dir, tsv[0]) }
        let listing = entries.isEmpty ? "it is empty" : "it holds " + entries.joined(separator: ", ")
        throw GradNormIRError.invalidInput(
            tsv.isEmpty
                ? "\(dir): no qrels .tsv file (\(listing))"
                : "\(dir): no test.tsv and \(tsv.count) other .tsv files (\(tsv.joined(separator: ", "))); "
                    + "the qrels to evaluate are read from test.tsv (or from the only .tsv file): "
                    + "copy or rename the one you want to test.tsv")
    }

    // MARK: Field decoding

    /// `_id` (preferred) or `id`, by the rules of `JSONLines.decodeID`; required here.
    static func decodeID(_ obj: [String: Any], path: String, line: Int) throws -> String {
        guard let id = try JSONLines.decodeID(obj, path: path, line: line) else {
            throw GradNormIRError.malformedJSON(path: path, line: line, reason: "missing field \"_id\" (or \"id\")")
        }
        return id
    }

    static func stringField(_ key: String, of obj: [String: Any], path: String, line: Int) throws -> String {
        guard let value = obj[key] else {
            throw GradNormIRError.malformedJSON(path: path, line: line, reason: "missing field \"\(key)\"")
        }
        guard let s = value as? String else {
            throw GradNormIRError.malformedJSON(path: path, line: line, reason: "\"\(key)\" must be a string")
        }
        return s
    }

    static func decodeDocument(_ obj: [String: Any], path: String, line: Int) throws -> Document {
        let id = try decodeID(obj, path: path, line: line)
        let text = try stringField("text", of: obj, path: path, line: line)
        var title = ""
        if let t = obj["title"], !(t is NSNull) {
            guard let s = t as? String else {
                throw GradNormIRError.malformedJSON(path: path, line: line, reason: "\"title\" must be a string")
            }
            title = s
        }
        let doc = Document(id: id, title: title, text: text)
        let full = doc.fullText
        let bytes = full.utf8.count
        if bytes > maxDocumentBytes {
            throw GradNormIRError.badRecord(
                path: path, line: line,
                reason: "document too large (id '\(id)'): \(bytes) UTF-8 bytes, the limit is \(maxDocumentBytes)")
        }
        if full.allSatisfy(\.isWhitespace) {
            throw GradNormIRError.badRecord(path: path, line: line, reason: "empty document (id '\(id)')")
        }
        return doc
    }

    // MARK: Reading files

    static func join(_ folder: String, _ name: String) -> String {
        URL(fileURLWithPath: folder).appendingPathComponent(name).path
    }
}
