import Foundation

/// A JSON-lines file written one finished unit of work at a time, durably (each line in one call,
/// then flushed to disk), that a rerun with the same settings resumes: the complete lines are
/// kept, a torn last line is cut off, and the run goes on after them. A sidecar file holds the
/// settings; a rerun with other settings is refused.
///
/// Used by `ScoreFile` (a line per scored document) and by the evolving-corpus simulation (a line
/// per finished session).
final class ResumableLines {
    let path: String
    /// The complete lines found when the file was opened, without their newline.
    let existing: [Data]
    private let fd: Int32

    /// Opens `path` with settings `meta`, recorded in `metaPath`. When `path` already exists and
    /// `metaPath` does not hold `meta`, throws `.resumeMismatch(path, mismatch)`. Every complete line goes
    /// through `validate(lineNumber, line)` (1-based) before anything is changed on disk.
    init(path: String, metaPath: String, meta: String, mismatch: String,
         validate: (Int, Data) throws -> Void = { _, _ in }) throws {
        self.path = path
        let fm = FileManager.default
        var contents = Data()
        if fm.fileExists(atPath: path) {
            guard let m = fm.contents(atPath: metaPath), String(decoding: m, as: UTF8.self) == meta else {
                throw GradNormIRError.resumeMismatch(path: path, reason: mismatch)
            }
            contents = fm.contents(atPath: path) ?? Data()
        } else {
            try Data(meta.utf8).write(to: URL(fileURLWithPath: metaPath), options: .atomic)
        }
        var keep = 0
        var lines: [Data] = []
        var start = contents.startIndex
        while let nl = contents[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = Data(contents[start..<nl])
            try validate(lines.count + 1, line)
            lines.append(line)
            start = contents.index(after: nl)
            keep = start - contents.startIndex
        }
        existing = lines
        fd = open(path, O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw GradNormIRError.io(path: path, reason: "cannot open for writing") }
        guard ftruncate(fd, off_t(keep)) == 0, lseek(fd, off_t(keep), SEEK_SET) == off_t(keep) else {
            close(fd)
            throw GradNormIRError.io(path: path, reason: "cannot truncate the torn last line")
        }
    }

    deinit { close(fd) }

    /// Appends one line and forces it to disk.
    func append(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let r = bytes[written...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            guard r > 0 else { throw GradNormIRError.io(path: path, reason: "write failed") }
            written += r
        }
        guard fsync(fd) == 0 else { throw GradNormIRError.io(path: path, reason: "fsync failed") }
    }
}
