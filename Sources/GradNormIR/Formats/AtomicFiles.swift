import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsynced, renamed.
public func writeFileAtomically(_ path: String, _ data: Data) throws {
    try writeAtomically(path) { try $0.write(contentsOf: data) }
}

/// Copies a file through a temporary file in the target folder, flushed and then renamed.
func copyAtomically(from: String, to: String) throws {
    guard let data = FileManager.default.contents(atPath: from) else {
        throw GradNormIRError.io(path: from, reason: "cannot read")
    }
    try writeAtomically(to) { handle in try handle.write(contentsOf: data) }
}

/// Writes `to` through `<to>.tmp-<pid>` in the same folder: `body` fills the file, which is then
/// fsynced and renamed over `to` (atomic on POSIX file systems), and the folder is fsynced.
func writeAtomically(_ to: String, _ body: (FileHandle) throws -> Void) throws {
    let tmp = to + ".tmp-\(getpid())"
    let fm = FileManager.default
    try? fm.removeItem(atPath: tmp)
    guard fm.createFile(atPath: tmp, contents: nil) else {
        throw GradNormIRError.io(path: to, reason: "cannot create \(tmp)")
    }
    do {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
        defer { try? handle.close() }
        try body(handle)
        try handle.synchronize()
    } catch let e as GradNormIRError {
        try? fm.removeItem(atPath: tmp)
        throw e
    } catch {
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot write: \(error.localizedDescription)")
    }
    guard rename(tmp, to) == 0 else {
        let reason = String(cString: strerror(errno))
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot rename the temporary file into place: \(reason)")
    }
    let dir = URL(fileURLWithPath: to).deletingLastPathComponent().path
    let fd = open(dir, O_RDONLY)
    if fd >= 0 { _ = fsync(fd); close(fd) }
}
