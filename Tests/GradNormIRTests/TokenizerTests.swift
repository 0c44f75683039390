import Foundation
import XCTest
import GradNormIR
import TestSupport

/// BertTokenizer against the Hugging Face `tokenizers` reference for all-MiniLM-L6-v2
/// (fixture written by `scripts/make_tokenizer_fixture.py`), plus loading errors and truncation.
final class TokenizerTests: XCTestCase {
    /// The real model's vocabulary (loaded once for the whole class).
    private static let realTokenizer: Result<BertTokenizer, Error> = Result {
        let model = try TestPaths.requireModel()
        return try BertTokenizer.load(vocabFile: model.appendingPathComponent("vocab.txt").path)
    }

    private func real() throws -> BertTokenizer { try Self.realTokenizer.get() }

    private struct FixtureLine: Decodable {
        let text: String
        let ids: [Int]
    }

    // MARK: - Reference ids

    func testEveryFixtureLineMatchesReference() throws {
        let tokenizer = try real()
        let url = try XCTUnwrap(Bundle.module.url(forResource: "tokenizer_ids", withExtension: "jsonl",
                                                  subdirectory: "Fixtures"),
                                "tokenizer_ids.jsonl missing: run scripts/make_tokenizer_fixture.py")
        let data = try Data(contentsOf: url)
        // Split on the byte 0x0A: the file is ASCII JSON, one object a line.
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        XCTAssertGreaterThanOrEqual(lines.count, 220, "fixture too small")
        let decoder = JSONDecoder()
        var mismatches: [String] = []
        for (k, line) in lines.enumerated() {
            let item: FixtureLine
            do {
                item = try decoder.decode(FixtureLine.self, from: Data(line))
            } catch {
                XCTFail("tokenizer_ids.jsonl:\(k + 1): malformed line: \(error)")
                continue
            }
            let actual = tokenizer.encode(item.text, maxLength: 512)
            if actual != item.ids {
                let first = zip(actual, item.ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(actual.count, item.ids.count)
                mismatches.append("""
                    line \(k + 1): text \(Self.escaped(item.text))
                      expected \(item.ids)
                      actual   \(actual)
                      first difference at index \(first); pieces \(tokenizer.tokenize(item.text).prefix(first + 3))
                    """)
            }
        }
        if !mismatches.isEmpty {
            print(mismatches.joined(separator: "\n"))
            XCTFail("\(mismatches.count) of \(lines.count) fixture lines differ from the reference (listed above)")
        }
    }

    func testDataMdReferenceIds() throws {
        let tokenizer = try real()
        XCTAssertEqual(tokenizer.encode("hello world"), [101, 7592, 2088, 102])
        XCTAssertEqual(tokenizer.encode("The quick brown fox jumps over the lazy dog."),
                       [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
    }

    func testVocabularyAndSpecialTokens() throws {
        let tokenizer = try real()
        XCTAssertEqual(tokenizer.vocabularySize, 30522)
        XCTAssertEqual(tokenizer.clsId, 101)
        XCTAssertEqual(tokenizer.sepId, 102)
        XCTAssertEqual(tokenizer.padId, 0)
        XCTAssertEqual(tokenizer.unkId, 100)
        XCTAssertEqual(tokenizer.id(of: "[MASK]"), 103)
        XCTAssertEqual(tokenizer.id(of: "hello"), 7592)
        XCTAssertNil(tokenizer.id(of: "Hello"))
        XCTAssertEqual(tokenizer.token(of: 2088), "world")
        XCTAssertNil(tokenizer.token(of: 30522))
        XCTAssertEqual(tokenizer.encode(""), [101, 102])
        XCTAssertEqual(tokenizer.encode(" \t\n\u{200B}"), [101, 102])
    }

    func testTokenizeGivesWordPiecesWithoutSpecials() throws {
        let tokenizer = try real()
        XCTAssertEqual(tokenizer.tokenize("hello world"), ["hello", "world"])
        XCTAssertEqual(tokenizer.tokenize("Café, naïve!"), ["cafe", ",", "naive", "!"])
        XCTAssertEqual(tokenizer.tokenize(""), [])
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "a", count: 101)), ["[UNK]"])
        XCTAssertEqual(tokenizer.tokenize("a [MASK] b"), ["a", "[MASK]", "b"])
        let pieces = tokenizer.tokenize("tokenization")
        XCTAssertGreaterThan(pieces.count, 1)
        XCTAssertTrue(pieces.dropFirst().allSatisfy { $0.hasPrefix("##") })
    }

    // MARK: - Truncation

    func testTruncationKeepsClsPrefixAndSep() throws {
        let tokenizer = try real()
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 80)
        let full = tokenizer.encode(text, maxLength: Int.max)
        XCTAssertEqual(full.count, 80 * 10 + 2)
        for maxLength in [2, 3, 16, 256, 512] {
            let ids = tokenizer.encode(text, maxLength: maxLength)
            XCTAssertEqual(ids.count, maxLength, "maxLength \(maxLength)")
            XCTAssertEqual(ids.first, tokenizer.clsId)
            XCTAssertEqual(ids.last, tokenizer.sepId)
            XCTAssertEqual(Array(ids.dropLast()), Array(full.prefix(maxLength - 1)), "maxLength \(maxLength)")
        }
        XCTAssertEqual(tokenizer.encode(text).count, 512, "default maxLength is 512")
        XCTAssertEqual(tokenizer.encode("hello world", maxLength: 4), [101, 7592, 2088, 102])
        XCTAssertEqual(tokenizer.encode("hello world", maxLength: 3), [101, 7592, 102])
        // Truncation may cut a word between its pieces, as the reference does.
        let pieces = tokenizer.encode("tokenization", maxLength: 3)
        XCTAssertEqual(pieces, [101, tokenizer.id(of: tokenizer.tokenize("tokenization")[0])!, 102])
    }

    // MARK: - Small vocabularies

    func testGreedyLongestMatchAndWholeWordUnknown() {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "##a", "aff", "!", "##!"]
        let tokenizer = BertTokenizer(vocabulary: vocab)
        XCTAssertEqual(tokenizer.tokenize("unaffable"), ["un", "##aff", "##able"])
        XCTAssertEqual(tokenizer.tokenize("UNAFFABLE!"), ["un", "##aff", "##able", "!"])
        XCTAssertEqual(tokenizer.tokenize("unaffablex aff"), ["[UNK]", "aff"], "one failing part makes the word [UNK]")
        XCTAssertEqual(tokenizer.encode("unaffa"), [2, 4, 5, 7, 3])
    }

    func testWordLengthLimitCountsScalars() {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##a", "\u{1F600}", "##\u{1F600}"]
        let tokenizer = BertTokenizer(vocabulary: vocab, maxInputCharsPerWord: 5)
        XCTAssertEqual(tokenizer.tokenize("aaaaa"), ["a", "##a", "##a", "##a", "##a"])
        XCTAssertEqual(tokenizer.tokenize("aaaaaa"), ["[UNK]"])
        // Five emoji are 5 scalars (20 UTF-8 bytes, 10 UTF-16 units): within the limit.
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "\u{1F600}", count: 5)).count, 5)
        XCTAssertEqual(tokenizer.tokenize(String(repeating: "\u{1F600}", count: 6)), ["[UNK]"])
    }

    func testCaseAndAccentOptions() {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cafe", "café", "Café", "Cafe"]
        XCTAssertEqual(BertTokenizer(vocabulary: vocab).tokenize("Café"), ["cafe"])
        // stripAccents follows lowercase when nil.
        XCTAssertEqual(BertTokenizer(vocabulary: vocab, lowercase: false).tokenize("Café"), ["Café"])
        XCTAssertEqual(BertTokenizer(vocabulary: vocab, lowercase: false, stripAccents: true).tokenize("Café"), ["Cafe"])
        XCTAssertEqual(BertTokenizer(vocabulary: vocab, lowercase: true, stripAccents: false).tokenize("Café"), ["café"])
    }

    func testCanonicallyEquivalentEntriesStayDistinct() {
        // Swift String equality would merge these two entries; the reference keeps both.
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u{E9}", "e\u{301}"]
        let tokenizer = BertTokenizer(vocabulary: vocab, lowercase: false, stripAccents: false)
        XCTAssertEqual(tokenizer.id(of: "\u{E9}"), 4)
        XCTAssertEqual(tokenizer.id(of: "e\u{301}"), 5)
        XCTAssertEqual(tokenizer.encode("\u{E9} e\u{301}"), [2, 4, 5, 3])
    }

    func testChineseCharsOption() {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u{4E2D}", "##\u{6587}", "\u{6587}"]
        XCTAssertEqual(BertTokenizer(vocabulary: vocab).tokenize("\u{4E2D}\u{6587}"), ["\u{4E2D}", "\u{6587}"])
        XCTAssertEqual(BertTokenizer(vocabulary: vocab, tokenizeChineseChars: false).tokenize("\u{4E2D}\u{6587}"),
                       ["\u{4E2D}", "##\u{6587}"])
    }

    // MARK: - Loading errors

    private func temporaryFile(_ bytes: [UInt8], name: String = "vocab.txt") throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("TokenizerTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func assertLoadThrows(_ path: String, _ expected: (GradNormIRError) -> Bool,
                                  file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try BertTokenizer.load(vocabFile: path)
            XCTFail("load(\(path)) did not throw", file: file, line: line)
        } catch let error as GradNormIRError {
            XCTAssertTrue(expected(error), "unexpected error: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(path), "message should name the file: \(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
        }
    }

    func testLoadMissingFile() {
        let path = "/nonexistent/\(UUID().uuidString)/vocab.txt"
        assertLoadThrows(path) { $0 == .fileNotFound(path: path) }
    }

    func testLoadInvalidUTF8() throws {
        let path = try temporaryFile(Array("[PAD]\n[UNK]\n".utf8) + [0x61, 0xFF, 0x62, 0x0A] + Array("[CLS]\n[SEP]\n".utf8))
        assertLoadThrows(path) { $0 == .invalidUTF8(path: path, line: 3) }
    }

    func testLoadEmptyVocabulary() throws {
        let path = try temporaryFile([])
        assertLoadThrows(path) {
            if case .tokenizer(let p, let reason) = $0 { return p == path && reason.contains("empty") }
            return false
        }
    }

    func testLoadDuplicateToken() throws {
        let path = try temporaryFile(Array("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n".utf8))
        assertLoadThrows(path) {
            if case .tokenizer(_, let reason) = $0 { return reason.contains("duplicate") && reason.contains("hello") }
            return false
        }
    }

    func testLoadMissingSpecialToken() throws {
        let path = try temporaryFile(Array("[PAD]\n[UNK]\n[CLS]\nhello\n".utf8))
        assertLoadThrows(path) {
            if case .tokenizer(_, let reason) = $0 { return reason.contains("[SEP]") }
            return false
        }
    }

    func testLoadDirectoryIsAnIOError() throws {
        let path = try temporaryFile([0x61])
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        assertLoadThrows(dir) { if case .io = $0 { return true } else { return false } }
    }

    func testLoadAcceptsCRLFAndNoFinalNewline() throws {
        let path = try temporaryFile(Array("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello".utf8))
        let tokenizer = try BertTokenizer.load(vocabFile: path)
        XCTAssertEqual(tokenizer.vocabularySize, 5)
        XCTAssertEqual(tokenizer.encode("Hello"), [2, 4, 3])
    }

    // MARK: - Helpers

    /// The text with every non-printable-ASCII scalar written as \u{…}, for failure messages.
    private static func escaped(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            if s.value >= 0x20 && s.value < 0x7F && s != "\"" && s != "\\" {
                out.unicodeScalars.append(s)
            } else {
                out += "\\u{\(String(s.value, radix: 16, uppercase: true))}"
            }
        }
        return out + "\""
    }
}
