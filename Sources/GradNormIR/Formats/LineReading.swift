import Foundation

/// What to do with a line that cannot be used: stop with an error naming file and line (`fail`),
/// or leave it out and count it (`skip`). Skipped lines are always counted and reported.
public enum BadLinePolicy: String, Sendable, CaseIterable {
    case fail, skip
}

extension JSONLines {
    /// `JSONLines.forEachObject` over `data`, with the bad-line policy: under `.fail` every error
    /// propagates; under `.skip` errors of `body` are counted, and a line that is not UTF-8 or not a
    /// JSON object is counted and reading resumes on the next line. Returns the skipped count.
    static func forEachObject(in data: Data, source path: String, onBadLine: BadLinePolicy,
                              _ body: (Int, [String: Any]) throws -> Void) throws -> Int {
        var skipped = 0
        var start = data.startIndex
        var base = 0  // lines before `start`
        while true {
            do {
                try forEachObject(in: data[start...], source: path) { line, obj in
                    do {
                        try body(base + line, obj)
                    } catch where onBadLine == .skip && error is GradNormIRError {
                        skipped += 1
                    }
                }
                return skipped
            } catch let error as GradNormIRError {
                // Only parse errors of forEachObject reach here under .skip (body's are counted above).
                guard onBadLine == .skip, let bad = parseErrorLine(error) else { throw error }
                skipped += 1
                start = index(after: bad, linesFrom: start, in: data)
                base += bad
            }
        }
    }

    /// The 1-based line of a per-line parse error of `JSONLines.forEachObject`.
    private static func parseErrorLine(_ error: GradNormIRError) -> Int? {
        switch error {
        case .invalidUTF8(_, let line?), .malformedJSON(_, let line?, _): return line
        default: return nil
        }
    }

    /// The index just past the `lines`-th line starting at `start` (lines end with "\n").
    private static func index(after lines: Int, linesFrom start: Data.Index, in data: Data) -> Data.Index {
        var i = start
        for _ in 0..<lines {
            guard let newline = data[i...].firstIndex(of: UInt8(ascii: "\n")) else { return data.endIndex }
            i = data.index(after: newline)
        }
        return i
    }

    /// Calls `body(line, bytes)` for every line of `data` (1-based; LF or CRLF, the terminator and
    /// a trailing CR removed), without copying the file or collecting lines.
    static func forEachLine(in data: Data, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var line = 0
            var start = 0
            while start < raw.count {
                line += 1
                var end = start
                while end < raw.count && raw[end] != 0x0A { end += 1 }
                var stop = end
                if stop > start && raw[stop - 1] == 0x0D { stop -= 1 }
                try body(line, UnsafeRawBufferPointer(rebasing: raw[start..<stop]))
                start = end + 1
            }
        }
    }
}

/// The file's bytes, memory-mapped; `.fileNotFound`, or `.io` for a directory or an unreadable file.
func mapFile(_ path: String) throws -> Data {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw GradNormIRError.fileNotFound(path: path)
    }
    guard !isDir.boolValue else { throw GradNormIRError.io(path: path, reason: "is a directory, expected a file") }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    } catch {
        throw GradNormIRError.io(path: path, reason: "cannot read: \(ioFailureReason(error, path: path))")
    }
}
