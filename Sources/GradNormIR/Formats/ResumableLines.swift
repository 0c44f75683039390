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

    /// Opens `path` with settings `meta`, recorded in `metaPath`. When `path` already exists, the
    /// settings recorded in `metaPath` must match: when `differences` is given, it reads the
    /// recorded settings and lists in words what differs from this run's (nil: not a settings
    /// file this version writes), and anything listed is refused with `.resumeMismatch` naming it;
    /// without it the recorded text must equal `meta` (else `.resumeMismatch(path, mismatch)`). A
    /// missing `metaPath` is refused. Every complete line goes
    /// through `validate(lineNumber, line)` (1-based) before anything is changed on disk.
    init(path: String, metaPath: String, meta: String, mismatch: String,
         differences: ((String) -> [String]?)? = nil,
         validate: (Int, Data) throws -> Void = { _, _ in }) throws {
        self.path = path
        let fm = FileManager.default
        var contents = Data()
        if fm.fileExists(atPath: path) {
            guard let m = fm.contents(atPath: metaPath) else {
                throw GradNormIRError.resumeMismatch(path: path, reason: "exists but its settings file \(metaPath) does not")
            }
            let recorded = String(decoding: m, as: UTF8.self)
            if let differences {
                guard let changed = differences(recorded) else {
                    throw GradNormIRError.resumeMismatch(
                        path: path, reason: "its settings file \(metaPath) is not one this version writes (no fingerprints)")
                }
                guard changed.isEmpty else {
                    throw GradNormIRError.resumeMismatch(
                        path: path, reason: "was written with other settings or inputs (see \(metaPath)): " + changed.joined(separator: "; "))
                }
            } else if recorded != meta {
                throw GradNormIRError.resumeMismatch(path: path, reason: mismatch)
            }
            contents = fm.contents(atPath: path) ?? Data()
        } else {
            do {
                try Data(meta.utf8).write(to: URL(fileURLWithPath: metaPath), options: .atomic)
            } catch {
                throw GradNormIRError.io(path: path, reason: "cannot write its settings file \(metaPath): "
                                                             + ioFailureReason(error, path: metaPath))
            }
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
        guard fd >= 0 else {
            throw GradNormIRError.io(path: path, reason: "cannot open for writing: \(ioFailureReason(errno: errno, path: path))")
        }
        guard ftruncate(fd, off_t(keep)) == 0, lseek(fd, off_t(keep), SEEK_SET) == off_t(keep) else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw GradNormIRError.io(path: path, reason: "cannot truncate the torn last line: \(reason)")
        }
    }

    deinit { close(fd) }

    /// Appends one line and forces it to disk. Throws `.io(path, reason)` with the system's reason
    /// ("No space left on device", …).
    func append(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let r = bytes[written...].withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else {
                let reason = r < 0 ? String(cString: strerror(errno)) : "no bytes written"
                throw GradNormIRError.io(path: path, reason: "write failed: \(reason)")
            }
            written += r
        }
        guard fsync(fd) == 0 else {
            throw GradNormIRError.io(path: path, reason: "fsync failed: \(String(cString: strerror(errno)))")
        }
    }
}
