import Foundation

/// One text to tokenise or embed, read from a JSON line.
public struct TextRecord: Sendable, Equatable {
    /// The record's `_id` (BEIR corpus) or `id`, if it has one.
    public let id: String?
    /// The text: `text`, preceded by `title` and a space when a non-empty title is present
    /// (the BEIR convention for embedding documents).
    public let text: String
    /// 1-based line number in its source.
    public let line: Int

    public init(id: String?, text: String, line: Int) {
        self.id = id
        self.text = text
        self.line = line
    }
}

/// Reading JSON-lines input strictly: every error names the source and the 1-based line.
public enum JSONLines {
    /// Splits `data` into lines (LF or CRLF), skipping blank ones, and decodes each as UTF-8 JSON
    /// object. Calls `body(line, object)`.
    public static func forEachObject(in data: Data, source: String,
                                     _ body: (Int, [String: Any]) throws -> Void) throws {
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            var slice = data[start..<end]
            if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
            start = end < data.endIndex ? data.index(after: end) : end
            guard String(data: slice, encoding: .utf8) != nil else {
                throw GradNormIRError.invalidUTF8(path: source, line: lineNumber)
            }
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let obj: Any
            do {
                obj = try JSONSerialization.jsonObject(with: Data(slice), options: [])
            } catch {
                throw GradNormIRError.malformedJSON(path: source, line: lineNumber, reason: "not valid JSON")
            }
            guard let dict = obj as? [String: Any] else {
                throw GradNormIRError.malformedJSON(path: source, line: lineNumber, reason: "expected a JSON object")
            }
            try body(lineNumber, dict)
        }
    }

    /// Reads `{"text": …}` lines, or BEIR `corpus.jsonl` lines (`_id`, `title`, `text`).
    public static func readTextRecords(from data: Data, source: String) throws -> [TextRecord] {
        var out: [TextRecord] = []
        try forEachObject(in: data, source: source) { line, obj in
            guard let text = obj["text"] as? String else {
                throw GradNormIRError.malformedJSON(path: source, line: line, reason: "missing string field \"text\"")
            }
            var id: String?
            if let v = obj["_id"] ?? obj["id"] {
                if let s = v as? String { id = s } else if let n = v as? NSNumber { id = n.stringValue } else {
                    throw GradNormIRError.malformedJSON(path: source, line: line, reason: "\"_id\" must be a string or number")
                }
            }
            if let t = obj["title"], !(t is String), !(t is NSNull) {
                throw GradNormIRError.malformedJSON(path: source, line: line, reason: "\"title\" must be a string")
            }
            let title = (obj["title"] as? String) ?? ""
            out.append(TextRecord(id: id, text: title.isEmpty ? text : title + " " + text, line: line))
        }
        return out
    }

    /// A JSON string literal for `s` (quotes included), escaped per RFC 8259.
    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                out += String(format: "\\u%04x", u.value)
            default:
                out.unicodeScalars.append(u)
            }
        }
        out += "\""
        return out
    }
}
