import Foundation

/// A BERT WordPiece tokenizer that reproduces the Hugging Face `tokenizers` pipeline of an
/// uncased BERT checkpoint such as all-MiniLM-L6-v2, id for id:
///
/// 1. Special tokens (`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` when in the vocabulary) are
///    matched verbatim in the raw text, before any normalisation, and become their own ids
///    (HF "added tokens" with `normalized: false`).
/// 2. `BertNormalizer` on the text between them: clean text (drop U+0000, U+FFFD and
///    Cc/Cf/Co scalars except `\t \n \r`; map White_Space to U+0020), put spaces around CJK
///    ideographs, strip accents (NFD, then drop Mn), lowercase (per scalar, full mapping).
/// 3. `BertPreTokenizer`: split on White_Space (removed) and around every punctuation scalar
///    (ASCII punctuation or Unicode category P*, kept as its own word).
/// 4. `WordPiece`: greedy longest-match-first with the `##` continuation prefix; a word longer
///    than `maxInputCharsPerWord` scalars, or with a part that matches nothing, is one `[UNK]`.
///
/// Everything works on Unicode scalars (Rust `char`s), never on Swift `Character`s, and vocabulary
/// entries are compared byte for byte (Swift `String` equality is canonical equivalence, which
/// would merge entries the reference keeps apart).
///
/// Unicode versions: the reference takes general categories (Cc/Cf/Co, Mn, P*) from the
/// `unicode_categories` crate, whose tables are Unicode 8.0: a later Cf such as U+08E2 or U+0890
/// is kept, a later Mn is not stripped, later punctuation does not split. Category tests here
/// therefore count only scalars assigned by `categoryTableVersion`, plus the seven scalars whose
/// category changed since 8.0 (see `isPunctuation`, `isNonspacingMark`). White_Space and
/// lowercase come from Rust's standard library and agree with Swift's tables on every scalar;
/// NFD agrees except for U+11938, whose decomposition (Unicode 13) the reference lacks.
/// All of this was checked scalar by scalar against `tokenizers` 0.23.3 over the whole code
/// space; `scripts/make_tokenizer_fixture.py` puts every scalar of these classes in the fixture.
public struct BertTokenizer: Sendable {
    /// Tokens matched verbatim in raw input text when present in the vocabulary.
    public static let defaultSpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    /// The WordPiece continuation prefix.
    public static let continuationPrefix = "##"
    /// The Unicode version of the category tables the reference uses (see the type comment).
    static let categoryTableVersion: Unicode.Version = (major: 8, minor: 0)

    public let clsId: Int
    public let sepId: Int
    public let padId: Int
    public let unkId: Int
    public let lowercase: Bool
    public let stripAccents: Bool
    public let tokenizeChineseChars: Bool
    public let maxInputCharsPerWord: Int

    private let table: VocabularyTable
    /// Verbatim special tokens, longest first (so the scan is leftmost-longest).
    private let verbatim: [VerbatimToken]

    /// A tokenizer over `vocabulary` (id = index).
    ///
    /// `stripAccents == nil` follows `lowercase`, as the reference does. The vocabulary must be
    /// non-empty, free of duplicates and contain `[CLS]`, `[SEP]`, `[PAD]` and `[UNK]`; violating
    /// that is a programmer error (use `load(vocabFile:)` for vocabularies that come from users:
    /// it throws instead).
    public init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true, maxInputCharsPerWord: Int = 100,
                specialTokens: [String] = BertTokenizer.defaultSpecialTokens) {
        do {
            try self.init(validating: vocabulary, source: "<vocabulary>", lowercase: lowercase,
                          stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars,
                          maxInputCharsPerWord: maxInputCharsPerWord, specialTokens: specialTokens)
        } catch {
            preconditionFailure("BertTokenizer: \(error)")
        }
    }

    private init(validating vocabulary: [String], source: String, lowercase: Bool, stripAccents: Bool?,
                 tokenizeChineseChars: Bool, maxInputCharsPerWord: Int, specialTokens: [String]) throws {
        guard !vocabulary.isEmpty else {
            throw GradNormIRError.tokenizer(path: source, reason: "empty vocabulary")
        }
        guard maxInputCharsPerWord >= 1 else {
            throw GradNormIRError.tokenizer(path: source, reason: "maxInputCharsPerWord must be at least 1")
        }
        let table = try VocabularyTable(vocabulary, source: source)
        func required(_ token: String) throws -> Int {
            guard let id = table.id(of: token) else {
                throw GradNormIRError.tokenizer(path: source, reason: "special token \(token) is not in the vocabulary")
            }
            return id
        }
        clsId = try required("[CLS]")
        sepId = try required("[SEP]")
        padId = try required("[PAD]")
        unkId = try required("[UNK]")
        self.table = table
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
        self.maxInputCharsPerWord = maxInputCharsPerWord
        var seen = Set<[UInt8]>()
        verbatim = specialTokens.compactMap { token -> VerbatimToken? in
            let bytes = Array(token.utf8)
            guard !bytes.isEmpty, seen.insert(bytes).inserted, let id = table.id(of: token) else { return nil }
            return VerbatimToken(bytes: bytes, id: id)
        }.sorted { $0.bytes.count > $1.bytes.count }
    }

    /// Reads a `vocab.txt` (one token per line, id = line number − 1; trailing whitespace of a line
    /// is dropped, as the reference's reader does).
    ///
    /// Throws `GradNormIRError.fileNotFound`, `.io`, `.invalidUTF8` (with the 1-based line) or
    /// `.tokenizer` (empty vocabulary, duplicate token, missing special token).
    public static func load(vocabFile: String, lowercase: Bool = true, stripAccents: Bool? = nil,
                            tokenizeChineseChars: Bool = true, maxInputCharsPerWord: Int = 100,
                            specialTokens: [String] = BertTokenizer.defaultSpecialTokens) throws -> BertTokenizer {
        let data = try mapFile(vocabFile)  // .fileNotFound, or .io for a directory or an unreadable file
        var vocabulary: [String] = []
        var lineStart = data.startIndex
        var lineNumber = 0
        while lineStart < data.endIndex {
            let newline = data[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            lineNumber += 1
            guard let line = String(validating: data[lineStart..<newline], as: UTF8.self) else {
                throw GradNormIRError.invalidUTF8(path: vocabFile, line: lineNumber)
            }
            var scalars = line.unicodeScalars[...]
            while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
            vocabulary.append(String(scalars))
            lineStart = newline == data.endIndex ? newline : data.index(after: newline)
        }
        return try BertTokenizer(validating: vocabulary, source: vocabFile, lowercase: lowercase,
                                 stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars,
                                 maxInputCharsPerWord: maxInputCharsPerWord, specialTokens: specialTokens)
    }

    /// Number of vocabulary entries (ids are `0..<vocabularySize`).
    public var vocabularySize: Int { table.count }

    /// The id of a vocabulary entry, compared byte for byte.
    public func id(of token: String) -> Int? { table.id(of: token) }

    /// The vocabulary entry with this id.
    public func token(of id: Int) -> String? { table.token(of: id) }

    /// The word pieces of `text`, without `[CLS]`/`[SEP]` and without truncation.
    public func tokenize(_ text: String) -> [String] {
        var ids: [Int] = []
        appendPieceIds(of: text, limit: Int.max, to: &ids)
        return ids.map { table.tokens[$0] }
    }

    /// `[CLS] pieces… [SEP]` ids, the pieces truncated so that the total is at most `maxLength`
    /// (the reference's `encode` with `truncation=max_length`). Precondition: `maxLength >= 2`.
    public func encode(_ text: String, maxLength: Int = 512) -> [Int] {
        precondition(maxLength >= 2, "BertTokenizer.encode: maxLength must be at least 2 ([CLS] and [SEP])")
        var ids: [Int] = [clsId]
        ids.reserveCapacity(min(maxLength, text.utf8.count + 2))
        appendPieceIds(of: text, limit: maxLength - 1, to: &ids)
        ids.append(sepId)
        return ids
    }

    /// The BertNormalizer output for `text` (no special-token matching); for tests and debugging.
    func normalized(_ text: String) -> String {
        var work = Workspace()
        normalize(text.unicodeScalars[...], work: &work)
        var result = String()
        result.unicodeScalars.append(contentsOf: work.normalized)
        return result
    }

    // MARK: - Pipeline

    /// Appends piece ids of `text` to `ids` until `ids.count == limit` (the rest is not computed).
    private func appendPieceIds(of text: String, limit: Int, to ids: inout [Int]) {
        guard ids.count < limit else { return }
        var work = Workspace()
        let utf8 = text.utf8
        var segmentStart = utf8.startIndex
        var i = segmentStart
        // Step 1: carve out verbatim special tokens (leftmost-longest), tokenize the rest.
        while i != utf8.endIndex {
            if let match = verbatimMatch(in: utf8, at: i) {
                appendSegment(text.unicodeScalars[segmentStart..<i], limit: limit, work: &work, to: &ids)
                guard ids.count < limit else { return }
                ids.append(match.id)
                i = match.end
                segmentStart = i
            } else {
                utf8.formIndex(after: &i)
            }
        }
        appendSegment(text.unicodeScalars[segmentStart..<utf8.endIndex], limit: limit, work: &work, to: &ids)
    }

    private func verbatimMatch(in utf8: String.UTF8View, at i: String.Index) -> (id: Int, end: String.Index)? {
        guard !verbatim.isEmpty else { return nil }
        let first = utf8[i]
        for token in verbatim where token.bytes[0] == first {
            var j = i
            var k = 0
            while k < token.bytes.count, j != utf8.endIndex, utf8[j] == token.bytes[k] {
                k += 1
                utf8.formIndex(after: &j)
            }
            if k == token.bytes.count { return (token.id, j) }
        }
        return nil
    }

    /// Normalises one segment, splits it into words and appends their WordPiece ids.
    private func appendSegment(_ segment: Substring.UnicodeScalarView, limit: Int,
                               work: inout Workspace, to ids: inout [Int]) {
        guard !segment.isEmpty, ids.count < limit else { return }
        normalize(segment, work: &work)
        // BertPreTokenizer: whitespace ends a word and is dropped; punctuation is a word of its own.
        var wordStart = 0
        let scalars = work.normalized
        for (k, s) in scalars.enumerated() {
            let isSpace = Self.isWhitespace(s)
            guard isSpace || Self.isPunctuation(s) else { continue }
            if wordStart < k { appendWordPieces(scalars[wordStart..<k], work: &work, to: &ids) }
            if !isSpace { appendWordPieces(scalars[k..<k + 1], work: &work, to: &ids) }
            wordStart = k + 1
            if ids.count >= limit { break }
        }
        if wordStart < scalars.count, ids.count < limit {
            appendWordPieces(scalars[wordStart...], work: &work, to: &ids)
        }
        if ids.count > limit { ids.removeLast(ids.count - limit) }
    }

    /// BertNormalizer, in the reference's order: clean text, CJK spacing, strip accents, lowercase.
    /// Result in `work.normalized`.
    private func normalize(_ segment: Substring.UnicodeScalarView, work: inout Workspace) {
        var out: [Unicode.Scalar] = []
        swap(&out, &work.normalized)  // keep the buffer uniquely referenced (no copy on write)
        out.removeAll(keepingCapacity: true)
        var allASCII = true
        for s in segment {
            // clean_text: drop NUL, U+FFFD and "other" scalars; every whitespace becomes a space.
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) { out.append(" "); continue }
            if s.isASCII { out.append(s); continue }
            allASCII = false
            if tokenizeChineseChars && Self.isChineseChar(s) {
                out.append(" "); out.append(s); out.append(" ")
            } else {
                out.append(s)
            }
        }
        if stripAccents && !allASCII {
            // NFD over the whole segment (canonical reordering needs neighbours), then drop Mn.
            // U+11938 decomposes only since Unicode 13, after the reference's tables: it is kept
            // whole. It is a starter (ccc 0), so decomposing the runs between its occurrences
            // separately gives the same result as one pass.
            var run = String()
            var source: [Unicode.Scalar] = []
            swap(&source, &out)
            func flush() {
                for s in run.decomposedStringWithCanonicalMapping.unicodeScalars where !Self.isNonspacingMark(s) {
                    out.append(s)
                }
                run = ""
            }
            for s in source {
                if s.value == 0x11938 {
                    flush()
                    out.append(s)
                } else {
                    run.unicodeScalars.append(s)
                }
            }
            flush()
            swap(&source, &work.scratch)  // recycle the buffer
        }
        if lowercase {
            if allASCII {
                for k in out.indices where out[k].value &- 65 < 26 {
                    out[k] = Unicode.Scalar(UInt8(out[k].value + 32))
                }
            } else {
                var lowered: [Unicode.Scalar] = []
                swap(&lowered, &work.scratch)
                lowered.removeAll(keepingCapacity: true)
                for s in out {
                    if s.isASCII {
                        lowered.append(s.value &- 65 < 26 ? Unicode.Scalar(UInt8(s.value + 32)) : s)
                    } else if s.properties.changesWhenLowercased {
                        lowered.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
                    } else {
                        lowered.append(s)
                    }
                }
                work.scratch = out
                out = lowered
            }
        }
        work.normalized = out
    }

    /// WordPiece on one pre-tokenized word: greedy longest match first, `##` after the first piece;
    /// the whole word becomes `[UNK]` if it is too long or some position matches nothing.
    private func appendWordPieces(_ word: ArraySlice<Unicode.Scalar>, work: inout Workspace, to ids: inout [Int]) {
        if word.count > maxInputCharsPerWord {
            ids.append(unkId)
            return
        }
        // UTF-8 bytes of the word and the byte offset of every scalar boundary.
        work.bytes.removeAll(keepingCapacity: true)
        work.bounds.removeAll(keepingCapacity: true)
        work.bounds.append(0)
        for s in word {
            UTF8.encode(s) { work.bytes.append($0) }
            work.bounds.append(work.bytes.count)
        }
        let firstPiece = ids.count
        let n = word.count
        let found: Bool = work.bytes.withUnsafeBufferPointer { bytes in
            var start = 0
            while start < n {
                var end = n
                var match: Int? = nil
                while start < end {
                    let piece = UnsafeBufferPointer(rebasing: bytes[work.bounds[start]..<work.bounds[end]])
                    if let id = table.id(of: piece, continuation: start > 0) { match = id; break }
                    end -= 1
                }
                guard let id = match else { return false }
                ids.append(id)
                start = end
            }
            return true
        }
        if !found {
            ids.removeLast(ids.count - firstPiece)
            ids.append(unkId)
        }
    }

    // MARK: - Character classes (internal so that tests can probe them)

    /// `\t \n \r` or White_Space (Rust `char::is_whitespace`).
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return s == " " || (s.value >= 9 && s.value <= 13) }
        return s.properties.isWhitespace
    }

    /// Cc, Cf or Co, except `\t \n \r` (the reference's `is_other`, which leaves out Cn and Cs).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return (s.value < 32 && s.value != 9 && s.value != 10 && s.value != 13) || s.value == 127 }
        switch s.properties.generalCategory {
        case .control, .privateUse: return true
        case .format: return isInCategoryTables(s)
        default: return false
        }
    }

    /// ASCII punctuation (33–47, 58–64, 91–96, 123–126) or Unicode category P*.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 128 { return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) }
        // Po in Unicode 8.0, since changed (U+166D to So, U+111C9 to Mn).
        if v == 0x166D || v == 0x111C9 { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isInCategoryTables(s)
        default:
            return false
        }
    }

    /// Category Mn (dropped after NFD when stripping accents).
    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0..<0x80: return false
        // Mn in Unicode 8.0, Mc now.
        case 0x1734, 0x1171E: return true
        // Lo (U+1885, U+1886), Mc (U+A9BD) or Po (U+111C9) in Unicode 8.0, Mn now.
        case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false
        default: return s.properties.generalCategory == .nonspacingMark && isInCategoryTables(s)
        }
    }

    /// The CJK ideograph blocks BERT surrounds with spaces (not kana, not hangul).
    static func isChineseChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Whether `s` was assigned by the Unicode version of the reference's category tables.
    private static func isInCategoryTables(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < categoryTableVersion.major
            || (age.major == categoryTableVersion.major && age.minor <= categoryTableVersion.minor)
    }
}

/// Reusable buffers for one `encode`/`tokenize` call.
private struct Workspace {
    var normalized: [Unicode.Scalar] = []
    var scratch: [Unicode.Scalar] = []
    var bytes: [UInt8] = []
    var bounds: [Int] = []
}

private struct VerbatimToken: Sendable {
    let bytes: [UInt8]
    let id: Int
}

