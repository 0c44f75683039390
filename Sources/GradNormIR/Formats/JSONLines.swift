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

    /// Reads `{"text": …}` lines, or BEIR `corpus.jsonl` lines (`_id`, `title`, `text`). An id, when
    /// present, follows the BEIR rules of `decodeID`.
    public static func readTextRecords(from data: Data, source: String) throws -> [TextRecord] {
        var out: [TextRecord] = []
        try forEachObject(in: data, source: source) { line, obj in
            guard let text = obj["text"] as? String else {
                throw GradNormIRError.malformedJSON(path: source, line: line, reason: "missing string field \"text\"")
            }
            let id = try decodeID(obj, path: source, line: line)
            if let t = obj["title"], !(t is String), !(t is NSNull) {
                throw GradNormIRError.malformedJSON(path: source, line: line, reason: "\"title\" must be a string")
            }
            let title = (obj["title"] as? String) ?? ""
            out.append(TextRecord(id: id, text: title.isEmpty ? text : title + " " + text, line: line))
        }
        return out
    }

    /// The record id of a decoded JSON line, by the BEIR rules used for every input: `_id`
    /// (preferred) or `id`, nil when the object has neither. The value must be a non-empty string,
    /// or an integer JSON number, kept as its exact decimal string (`12` → "12", also beyond 2^53).
    /// Booleans, `null`, fractions and floats (`1.0`, `1e3`) and `""` are refused; every error
    /// names `path` and the 1-based `line`.
    ///
    /// JSONSerialization gives every number as an `NSNumber`, and on Linux `value is Bool` holds
    /// for the integers 0 and 1 too, so the kind is read from `objCType`: "c" for a boolean
    /// (`__NSCFBoolean`), "d" for a float, an integer type code otherwise. Numbers beyond 64 bits
    /// arrive as `NSDecimalNumber` with code "d" and are refused (write such ids as strings).
    static func decodeID(_ obj: [String: Any], path: String, line: Int) throws -> String? {
        let key = obj["_id"] != nil ? "_id" : "id"
        guard let value = obj[key] else { return nil }
        func refuse(_ got: String) -> GradNormIRError {
            .malformedJSON(path: path, line: line, reason: "\"\(key)\" must be a string or an integer, got \(got)")
        }
        let id: String
        if let s = value as? String {
            id = s
        } else if let n = value as? NSNumber {
            switch String(cString: n.objCType) {
            case "c", "B": throw refuse("the boolean \(n.boolValue)")
            case "q", "i", "l", "s": id = String(n.int64Value)
            case "Q", "I", "L", "S", "C": id = String(n.uint64Value)
            default: throw refuse("the non-integer number \(n.stringValue)")
            }
        } else {
            throw refuse(value is NSNull ? "null" : "a JSON \(value is [Any] ? "array" : "object")")
        }
        guard !id.isEmpty else {
            throw GradNormIRError.badRecord(path: path, line: line, reason: "empty \"\(key)\"")
        }
        return id
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
