import Foundation
import XCTest
@testable import GradNormIR

/// BEIR dataset reading: the committed `Fixtures/beir-tiny` folder for the happy path, and
/// temporary datasets with one bad line each for every validation rule, under both policies.
final class BEIRTests: XCTestCase {
    private var tempFolders: [URL] = []

    override func tearDown() {
        for url in tempFolders { try? FileManager.default.removeItem(at: url) }
        tempFolders = []
        super.tearDown()
    }

    private func fixture() throws -> String {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "beir-tiny", withExtension: nil, subdirectory: "Fixtures"),
                                "Fixtures/beir-tiny missing")
        return url.path
    }

    /// Lines joined with "\n" (and a final "\n"), as UTF-8.
    private func lines(_ l: [String]) -> Data { Data((l.joined(separator: "\n") + "\n").utf8) }

    private static let goodCorpus = [
        #"{"_id": "a", "title": "Alpha", "text": "first document"}"#,
        #"{"_id": "b", "text": "second document"}"#,
        #"{"_id": 3, "title": "", "text": "third document"}"#,
    ]
    private static let goodQueries = [
        #"{"_id": "q1", "text": "first query"}"#,
        #"{"_id": 2, "text": "second query"}"#,
    ]
    private static let goodQrels = ["query-id\tcorpus-id\tscore", "q1\ta\t1", "2\tb\t1", "2\t3\t0"]

    /// A dataset folder in a fresh temporary directory; `qrelsFiles` maps file name → contents.
    private func makeDataset(corpus: Data? = nil, queries: Data? = nil,
                             qrelsFiles: [String: Data]? = nil) throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("beir-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("qrels"), withIntermediateDirectories: true)
        tempFolders.append(dir)
        try (corpus ?? lines(Self.goodCorpus)).write(to: dir.appendingPathComponent("corpus.jsonl"))
        try (queries ?? lines(Self.goodQueries)).write(to: dir.appendingPathComponent("queries.jsonl"))
        for (name, contents) in qrelsFiles ?? ["test.tsv": lines(Self.goodQrels)] {
            try contents.write(to: dir.appendingPathComponent("qrels").appendingPathComponent(name))
        }
        return dir.path
    }

    private func error(_ body: () throws -> Any) -> GradNormIRError? {
        do {
            _ = try body()
            return nil
        } catch let e as GradNormIRError {
            return e
        } catch {
            XCTFail("unexpected error type: \(error)")
            return nil
        }
    }

    // MARK: - Happy path

    func testFixtureDataset() throws {
        let ds = try BEIRDataset.load(folder: try fixture())
        XCTAssertEqual(ds.corpus.map(\.id), ["d1", "d2", "d3", "4", "d5", "d6", "d7", "8"])
        XCTAssertEqual(ds.corpus[0].fullText, "Swift Swift is a programming language created at Apple.")
        XCTAssertEqual(ds.corpus[1].title, "")
        XCTAssertEqual(ds.corpus[1].fullText, ds.corpus[1].text, "empty title: text only")
        XCTAssertEqual(ds.corpus[2].fullText, "Python is popular for data science.", "absent title")
        XCTAssertEqual(ds.corpus[3].fullText, "Go was designed at Google.", "null title")
        XCTAssertEqual(ds.corpus[6].fullText, "Ünïcode Texts may hold non-ASCII characters: é, 日本語.")
        XCTAssertEqual(ds.documentIndex["8"], 7)
        XCTAssertEqual(ds.queries.map(\.id), ["q1", "2", "q3", "q4"])
        XCTAssertEqual(ds.queries[1].text, "memory safe systems language")
        XCTAssertEqual(ds.queryIndex["q4"], 3)
        XCTAssertTrue(ds.qrelsPath.hasSuffix("qrels/test.tsv"))
        XCTAssertEqual(ds.skippedLines, 0)
        XCTAssertEqual(ds.skippedByFile, [:])

        // Every judged pair is kept with its score; relevance is score >= 1.
        XCTAssertEqual(ds.qrels, ["q1": ["d1": 1, "4": 0], "2": ["d2": 2, "d3": 0], "q3": ["8": 1, "d5": 1]])
        XCTAssertEqual(ds.relevantDocuments(of: "q1"), ["d1"])
        XCTAssertEqual(ds.relevantDocuments(of: "2"), ["d2"])
        XCTAssertEqual(ds.relevantDocuments(of: "q3"), ["8", "d5"], "qrels file order")
        XCTAssertEqual(ds.relevantDocuments(of: "q4"), [])
        XCTAssertEqual(ds.relevantQueries(of: "d5"), ["q3"])
        XCTAssertEqual(ds.relevantQueries(of: "d3"), [], "score 0 is not relevant")
        XCTAssertEqual(ds.relevantQueries(of: "4"), [])
        XCTAssertEqual(ds.corpus.map(\.id).filter { !ds.relevantQueries(of: $0).isEmpty }, ["d1", "d2", "d5", "8"])
    }

    func testSplitSelection() throws {
        let folder = try fixture()
        XCTAssertTrue(try BEIRDataset.load(folder: folder, split: "dev").qrelsPath.hasSuffix("qrels/dev.tsv"))
        let dev = try BEIRDataset.load(folder: folder, split: "dev.tsv")
        XCTAssertEqual(dev.relevantDocuments(of: "q1"), ["d7"])
        guard case .fileNotFound(let p)? = error({ try BEIRDataset.load(folder: folder, split: "train") }) else {
            return XCTFail("missing split must be fileNotFound")
        }
        XCTAssertTrue(p.hasSuffix("qrels/train.tsv"))

        // No test.tsv: the single .tsv is used.
        let single = try makeDataset(qrelsFiles: ["dev.tsv": lines(Self.goodQrels)])
        XCTAssertTrue(try BEIRDataset.load(folder: single).qrelsPath.hasSuffix("qrels/dev.tsv"))

        // No test.tsv and two others: an error listing them.
        let two = try makeDataset(qrelsFiles: ["dev.tsv": lines(Self.goodQrels), "train.tsv": lines(Self.goodQrels)])
        guard case .invalidInput(let reason)? = error({ try BEIRDataset.load(folder: two) }) else {
            return XCTFail("ambiguous split must be invalidInput")
        }
        XCTAssertTrue(reason.contains("dev.tsv") && reason.contains("train.tsv"), reason)

        let none = try makeDataset(qrelsFiles: ["README": Data("x".utf8)])
        guard case .invalidInput(let r2)? = error({ try BEIRDataset.load(folder: none) }) else {
            return XCTFail("no .tsv must be invalidInput")
        }
        XCTAssertTrue(r2.contains("README"), r2)
    }

    func testHeaderIsOptionalAndCRLFAccepted() throws {
        let withHeader = try BEIRDataset.load(folder: try makeDataset())
        let noHeader = try BEIRDataset.load(folder: try makeDataset(
            qrelsFiles: ["test.tsv": lines(Array(Self.goodQrels.dropFirst()))]))
        XCTAssertEqual(withHeader.qrels, noHeader.qrels)
        XCTAssertEqual(noHeader.qrels, ["q1": ["a": 1], "2": ["b": 1, "3": 0]])

        let crlf = try BEIRDataset.load(folder: try makeDataset(
            corpus: Data((Self.goodCorpus.joined(separator: "\r\n") + "\r\n").utf8),
            qrelsFiles: ["test.tsv": Data((Self.goodQrels.joined(separator: "\r\n")).utf8)]))  // no final newline
        XCTAssertEqual(crlf.corpus, withHeader.corpus)
        XCTAssertEqual(crlf.qrels, withHeader.qrels)
    }

    func testLoadCorpusFromFolderOrBareJSONL() throws {
        let folder = try fixture()
        let (docs, skipped) = try BEIRDataset.loadCorpus(path: folder)
        XCTAssertEqual(docs.count, 8)
        XCTAssertEqual(skipped, 0)
        XCTAssertEqual(try BEIRDataset.loadCorpus(path: folder + "/corpus.jsonl").documents, docs)

        // A bare JSONL with "id" keys (string and integer), integers converted to decimal strings.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("beir-bare-\(UUID().uuidString).jsonl")
        tempFolders.append(file)
        try lines([#"{"id": 17, "text": "x"}"#, #"{"id": "-3", "text": "y"}"#, #"{"id": 42, "title": "T", "text": "z"}"#])
            .write(to: file)
        XCTAssertEqual(try BEIRDataset.loadCorpus(path: file.path).documents,
                       [Document(id: "17", title: "", text: "x"), Document(id: "-3", title: "", text: "y"),
                        Document(id: "42", title: "T", text: "z")])

        // The integer -3 and the string "-3" are the same id.
        try lines([#"{"id": "-3", "text": "y"}"#, #"{"id": -3, "text": "z"}"#]).write(to: file)
        guard case .badRecord(_, 2, let reason)? = error({ try BEIRDataset.loadCorpus(path: file.path) }) else {
            return XCTFail("duplicate id across types")
        }
        XCTAssertTrue(reason.contains("duplicate document id '-3'"), reason)
    }

    func testMissingFiles() throws {
        guard case .fileNotFound? = error({ try BEIRDataset.load(folder: "/nonexistent/beir") }) else {
            return XCTFail("missing folder")
        }
        let folder = try makeDataset()
        try FileManager.default.removeItem(atPath: folder + "/queries.jsonl")
        guard case .fileNotFound(let p)? = error({ try BEIRDataset.load(folder: folder) }) else {
            return XCTFail("missing queries.jsonl")
        }
        XCTAssertTrue(p.hasSuffix("queries.jsonl"))
        try FileManager.default.removeItem(atPath: folder + "/qrels")
        guard case .fileNotFound(let q)? = error({ try BEIRDataset.load(folder: folder) }) else {
            return XCTFail("missing qrels folder")
        }
        XCTAssertTrue(q.hasSuffix("qrels"))
        guard case .fileNotFound? = error({ try BEIRDataset.loadCorpus(path: "/nonexistent/corpus.jsonl") }) else {
            return XCTFail("missing corpus")
        }
    }

    // MARK: - Bad lines

    private enum Kind { case malformedJSON, invalidUTF8, badRecord }

    private struct BadCase {
        let name: String
        let file: String  // corpus.jsonl, queries.jsonl or qrels/test.tsv
        let line: Data    // replaces the file's line `at`
        let kind: Kind
        let reason: String  // expected in the description
    }

    private static func d(_ s: String) -> Data { Data(s.utf8) }

    private static let badCases: [BadCase] = [
        BadCase(name: "truncated JSON", file: "corpus.jsonl", line: d(#"{"_id": "x", "text": "#),
                kind: .malformedJSON, reason: "malformed JSON"),
        BadCase(name: "not an object", file: "corpus.jsonl", line: d("[1, 2]"), kind: .malformedJSON,
                reason: "expected a JSON object"),
        BadCase(name: "invalid UTF-8", file: "corpus.jsonl",
                line: d(#"{"_id": "x", "text": "caf"#) + Data([0xC3, 0x28]) + d(#""}"#),
                kind: .invalidUTF8, reason: "invalid UTF-8"),
        BadCase(name: "missing text", file: "corpus.jsonl", line: d(#"{"_id": "x", "title": "t"}"#),
                kind: .malformedJSON, reason: #"missing field "text""#),
        BadCase(name: "text not a string", file: "corpus.jsonl", line: d(#"{"_id": "x", "text": 5}"#),
                kind: .malformedJSON, reason: #""text" must be a string"#),
        BadCase(name: "missing id", file: "corpus.jsonl", line: d(#"{"text": "t"}"#),
                kind: .malformedJSON, reason: #"missing field "_id""#),
        BadCase(name: "boolean id", file: "corpus.jsonl", line: d(#"{"_id": true, "text": "t"}"#),
                kind: .malformedJSON, reason: "must be a string or an integer"),
        BadCase(name: "fractional id", file: "corpus.jsonl", line: d(#"{"_id": 1.5, "text": "t"}"#),
                kind: .malformedJSON, reason: "must be a string or an integer"),
        BadCase(name: "empty id", file: "corpus.jsonl", line: d(#"{"_id": "", "text": "t"}"#),
                kind: .badRecord, reason: #"empty "_id""#),
        BadCase(name: "title not a string", file: "corpus.jsonl", line: d(#"{"_id": "x", "title": 1, "text": "t"}"#),
                kind: .malformedJSON, reason: #""title" must be a string"#),
        BadCase(name: "duplicate document id", file: "corpus.jsonl", line: d(#"{"_id": "a", "text": "again"}"#),
                kind: .badRecord, reason: "duplicate document id 'a' (first on line 1)"),
        BadCase(name: "empty document", file: "corpus.jsonl", line: d(#"{"_id": "x", "title": " ", "text": " \t\n "}"#),
                kind: .badRecord, reason: "empty document (id 'x')"),
        BadCase(name: "document too large", file: "corpus.jsonl",
                line: d(#"{"_id": "x", "text": ""# + String(repeating: "é", count: 500_001) + #""}"#),
                kind: .badRecord, reason: "document too large (id 'x'): 1000002 UTF-8 bytes"),
        BadCase(name: "empty query", file: "queries.jsonl", line: d(#"{"_id": "q9", "text": "  "}"#),
                kind: .badRecord, reason: "empty query (id 'q9')"),
        BadCase(name: "duplicate query id", file: "queries.jsonl", line: d(#"{"_id": "q1", "text": "again"}"#),
                kind: .badRecord, reason: "duplicate query id 'q1' (first on line 1)"),
        BadCase(name: "query without text", file: "queries.jsonl", line: d(#"{"_id": "q9"}"#),
                kind: .malformedJSON, reason: #"missing field "text""#),
        BadCase(name: "space-separated qrels", file: "qrels/test.tsv", line: d("q1 a 1"),
                kind: .badRecord, reason: "expected 3 tab-separated columns (query-id, corpus-id, score), found 1"),
        BadCase(name: "four columns", file: "qrels/test.tsv", line: d("q1\t0\ta\t1"),
                kind: .badRecord, reason: "found 4"),
        BadCase(name: "non-integer score", file: "qrels/test.tsv", line: d("q1\tb\t1.5"),
                kind: .badRecord, reason: "score '1.5' is not an integer"),
        BadCase(name: "unknown query", file: "qrels/test.tsv", line: d("q7\ta\t1"),
                kind: .badRecord, reason: "unknown query id 'q7'"),
        BadCase(name: "unknown document", file: "qrels/test.tsv", line: d("q1\tzz\t1"),
                kind: .badRecord, reason: "unknown corpus id 'zz'"),
        BadCase(name: "empty corpus id", file: "qrels/test.tsv", line: d("q1\t\t1"),
                kind: .badRecord, reason: "empty corpus id"),
        BadCase(name: "duplicate judgement", file: "qrels/test.tsv", line: d("q1\ta\t0"),
                kind: .badRecord, reason: "duplicate judgement of ('q1', 'a') (earlier score 1)"),
        BadCase(name: "qrels invalid UTF-8", file: "qrels/test.tsv", line: d("q1\tb") + Data([0xFF]) + d("\t1"),
                kind: .invalidUTF8, reason: "invalid UTF-8"),
    ]

    /// The good lines of `file` with `bad` inserted as the third line (after two good lines: the
    /// qrels header counts as one), so every error must name line 3.
    private func datasetWithBadLine(_ c: BadCase) throws -> String {
        func insert(_ good: [String]) -> Data {
            var out = Data()
            for (i, l) in good.enumerated() {
                if i == 2 { out += c.line + Self.d("\n") }
                out += Self.d(l + "\n")
            }
            return out
        }
        switch c.file {
        case "corpus.jsonl": return try makeDataset(corpus: insert(Self.goodCorpus))
        case "queries.jsonl": return try makeDataset(queries: insert(Self.goodQueries + [#"{"_id": "q3", "text": "t"}"#]))
        default: return try makeDataset(qrelsFiles: ["test.tsv": insert(Self.goodQrels)])
        }
    }
    func testEveryBadLineFailsWithFileAndLine() throws {
        for c in Self.badCases {
            let folder = try datasetWithBadLine(c)
            guard let e = error({ try BEIRDataset.load(folder: folder) }) else {
                XCTFail("\(c.name): no error"); continue
            }
            let path = folder + "/" + c.file
            switch (c.kind, e) {
            case (.malformedJSON, .malformedJSON(let p, let line, _)),
                 (.invalidUTF8, .invalidUTF8(let p, let line)):
                XCTAssertEqual(p, path, c.name)
                XCTAssertEqual(line, 3, c.name)
            case (.badRecord, .badRecord(let p, let line, _)):
                XCTAssertEqual(p, path, c.name)
                XCTAssertEqual(line, 3, c.name)
            default:
                XCTFail("\(c.name): wrong error case \(e)")
            }
            XCTAssertTrue(e.description.hasPrefix(path + ":3: "), "\(c.name): \(e.description)")
            XCTAssertTrue(e.description.contains(c.reason), "\(c.name): \(e.description)")
        }
    }

    func testEveryBadLineIsSkippedAndCounted() throws {
        let reference = try BEIRDataset.load(folder: try makeDataset())
        for c in Self.badCases {
            let folder = try datasetWithBadLine(c)
            let ds: BEIRDataset
            do {
                ds = try BEIRDataset.load(folder: folder, onBadLine: .skip)
            } catch {
                XCTFail("\(c.name): skip mode threw \(error)"); continue
            }
            XCTAssertEqual(ds.skippedLines, 1, c.name)
            XCTAssertEqual(ds.skippedByFile, [folder + "/" + c.file: 1], c.name)
            XCTAssertEqual(ds.corpus, reference.corpus, c.name)
            XCTAssertEqual(ds.qrels, reference.qrels, c.name)
            XCTAssertEqual(Array(ds.queries.prefix(2)), reference.queries, c.name)
        }
    }

    func testSkippedDocumentCascadesToItsJudgements() throws {
        // Document "b" is a duplicate of nothing but is empty, so it is skipped; its qrels line
        // then references an unknown document and is skipped too. Both are counted.
        let corpus = lines([Self.goodCorpus[0], #"{"_id": "b", "text": ""}"#, Self.goodCorpus[2]])
        let folder = try makeDataset(corpus: corpus)
        guard case .badRecord(_, 2, let reason)? = error({ try BEIRDataset.load(folder: folder) }) else {
            return XCTFail("fail mode must stop at corpus.jsonl:2")
        }
        XCTAssertTrue(reason.contains("empty document"))
        let ds = try BEIRDataset.load(folder: folder, onBadLine: .skip)
        XCTAssertEqual(ds.skippedLines, 2)
        XCTAssertEqual(ds.skippedByFile, [folder + "/corpus.jsonl": 1, folder + "/qrels/test.tsv": 1])
        XCTAssertEqual(ds.corpus.map(\.id), ["a", "3"])
        XCTAssertEqual(ds.relevantDocuments(of: "2"), [])
    }

    func testSkipResumesAfterConsecutiveParseErrorsWithCorrectLineNumbers() throws {
        // Lines: 1 good, 2 bad JSON, 3 bad UTF-8, 4 blank, 5 good, 6 not an object, 7 good (no final newline).
        var data = Self.d(#"{"_id": "a", "text": "one"}"# + "\n" + "{oops\n")
        data += Data([0x7B, 0xFF, 0x7D, 0x0A])  // {\xFF}
        data += Self.d("\n" + #"{"_id": "b", "text": "two"}"# + "\n" + "42\n" + #"{"_id": "c", "text": "three"}"#)
        var seen: [Int] = []
        let skipped = try JSONLines.forEachObject(in: data, source: "mem", onBadLine: .skip) { line, obj in
            seen.append(line)
            if obj["_id"] as? String == "b" { throw GradNormIRError.badRecord(path: "mem", line: line, reason: "x") }
        }
        XCTAssertEqual(seen, [1, 5, 7])
        XCTAssertEqual(skipped, 4, "3 parse errors + 1 rejected by the body")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("beir-resume-\(UUID().uuidString).jsonl")
        tempFolders.append(file)
        try data.write(to: file)
        let (docs, n) = try BEIRDataset.loadCorpus(path: file.path, onBadLine: .skip)
        XCTAssertEqual(docs.map(\.id), ["a", "b", "c"])
        XCTAssertEqual(n, 3)
        guard case .malformedJSON(_, 2?, _)? = error({ try BEIRDataset.loadCorpus(path: file.path) }) else {
            return XCTFail("fail mode must stop at line 2")
        }
    }

    func testNothingLeft() throws {
        let empty = try makeDataset(corpus: Data())
        guard case .invalidInput(let r)? = error({ try BEIRDataset.load(folder: empty) }) else {
            return XCTFail("empty corpus")
        }
        XCTAssertTrue(r.contains("no documents"), r)
        let allBad = try makeDataset(corpus: lines(["{", "[]"]))
        guard case .invalidInput(let r2)? = error({ try BEIRDataset.load(folder: allBad, onBadLine: .skip) }) else {
            return XCTFail("all lines skipped")
        }
        XCTAssertTrue(r2.contains("2 bad lines skipped"), r2)
        let headerOnly = try makeDataset(qrelsFiles: ["test.tsv": lines([Self.goodQrels[0]])])
        guard case .invalidInput(let r3)? = error({ try BEIRDataset.load(folder: headerOnly) }) else {
            return XCTFail("no judgements")
        }
        XCTAssertTrue(r3.contains("no judgements"), r3)
    }

    // MARK: - Ids: one decoder, the BEIR rules, everywhere

    /// Accepted ids and what they become: integers as their exact decimal string (0 and 1 are not
    /// booleans; 2^53 + 1 keeps its last digit).
    private static let goodIDs: [(json: String, id: String)] = [
        ("0", "0"), ("1", "1"), ("12", "12"), ("-4", "-4"), ("9007199254740993", "9007199254740993"), (#""x""#, "x"),
    ]
    /// Refused ids: booleans, floats (integral ones too), null and the empty string.
    private static let badIDs = ["true", "false", "1.0", "1e3", "1.5", "null", #""""#]

    private static func idLine(_ json: String, key: String = "_id") -> String { #"{"\#(key)": \#(json), "text": "t"}"# }

    func testIDRulesAreTheSameInCorpusQueriesAndTextRecords() throws {
        let good = lines(Self.goodIDs.map { Self.idLine($0.json) })
        let folder = try makeDataset(corpus: good, queries: good)
        let want = Self.goodIDs.map(\.id)
        XCTAssertEqual(try BEIRDataset.loadCorpus(path: folder).documents.map(\.id), want)
        XCTAssertEqual(try BEIRDataset.loadQueries(path: folder + "/queries.jsonl").queries.map(\.id), want)
        XCTAssertEqual(try JSONLines.readTextRecords(from: good, source: "stdin").map(\.id), want)
        let byId = lines(Self.goodIDs.map { Self.idLine($0.json, key: "id") } + [#"{"text": "no id"}"#])
        XCTAssertEqual(try JSONLines.readTextRecords(from: byId, source: "stdin").map(\.id), want + [nil])

        for bad in Self.badIDs {
            // The bad id on line 3, after two good lines.
            let data = lines([Self.idLine("\"a\""), Self.idLine("\"b\""), Self.idLine(bad)])
            let folder = try makeDataset(corpus: data, queries: data)
            let corpus = folder + "/corpus.jsonl", queries = folder + "/queries.jsonl"
            let failures: [(String, GradNormIRError?)] = [
                (corpus, error { try BEIRDataset.loadCorpus(path: corpus) }),
                (queries, error { try BEIRDataset.loadQueries(path: queries) }),
                ("stdin", error { try JSONLines.readTextRecords(from: data, source: "stdin") }),
                ("stdin", error { try JSONLines.readTextRecords(from: lines([Self.idLine("\"a\""), "", Self.idLine(bad, key: "id")]),
                                                                source: "stdin") }),
            ]
            for (path, e) in failures {
                guard let e else { XCTFail("id \(bad) accepted in \(path)"); continue }
                XCTAssertTrue(e.description.hasPrefix(path + ":3: "), "id \(bad): \(e.description)")
                XCTAssertTrue(e.description.contains(bad == #""""# ? "empty" : "must be a string or an integer"),
                              "id \(bad): \(e.description)")
            }
        }
    }

    func testSeveralQrelsFilesWithoutTestSayWhatToDo() throws {
        let two = try makeDataset(qrelsFiles: ["dev.tsv": lines(Self.goodQrels), "train.tsv": lines(Self.goodQrels)])
        guard case .invalidInput(let reason)? = error({ try BEIRDataset.load(folder: two) }) else {
            return XCTFail("ambiguous qrels must be invalidInput")
        }
        XCTAssertTrue(reason.hasPrefix(two + "/qrels: "), reason)
        XCTAssertTrue(reason.contains("dev.tsv") && reason.contains("train.tsv"), reason)
        XCTAssertFalse(reason.contains("split"), "no command has a split option: \(reason)")
        XCTAssertTrue(reason.contains("to test.tsv"), "the message must say to keep the qrels as test.tsv: \(reason)")
    }
}
