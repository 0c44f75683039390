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
    let data = try mapFile(from)
    try writeAtomically(to) { handle in try handle.write(contentsOf: data) }
}

/// Writes `to` through `<to>.tmp-<pid>` in the same folder: `body` fills the file, which is then
/// fsynced and renamed over `to` (atomic on POSIX file systems), and the folder is fsynced.
/// Every failure is `.io(path: to, …)` with the reason (missing folder, permission, disk full, …).
func writeAtomically(_ to: String, _ body: (FileHandle) throws -> Void) throws {
    let tmp = to + ".tmp-\(getpid())"
    let fm = FileManager.default
    try? fm.removeItem(atPath: tmp)
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else {
        let reason = ioFailureReason(errno: errno, path: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot create the temporary file \(tmp): \(reason)")
    }
    do {
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        defer { close(fd) }
        try body(handle)
        try handle.synchronize()
    } catch let e as GradNormIRError {
        try? fm.removeItem(atPath: tmp)
        throw e
    } catch {
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot write: \(ioFailureReason(error, path: tmp))")
    }
    guard rename(tmp, to) == 0 else {
        let reason = ioFailureReason(errno: errno, path: to)
        try? fm.removeItem(atPath: tmp)
        throw GradNormIRError.io(path: to, reason: "cannot rename the temporary file into place: \(reason)")
    }
    let dir = URL(fileURLWithPath: to).deletingLastPathComponent().path
    let dirfd = open(dir, O_RDONLY)
    if dirfd >= 0 { _ = fsync(dirfd); close(dirfd) }
}

// MARK: - Readable reasons for I/O failures

/// The POSIX error code a Foundation error carries, itself (`NSPOSIXErrorDomain`) or as its
/// `NSUnderlyingErrorKey`; nil when it carries none.
func posixCode(of error: Error) -> Int32? {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: ns.code) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? Error {
        let u = underlying as NSError
        if u.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: u.code) }
    }
    return nil
}

/// A one-line reason for a failed file operation on `path` that set `errno` to `code`: "the folder
/// X does not exist" when that is why (ENOENT), else `strerror(code)` ("Permission denied",
/// "No space left on device", …).
func ioFailureReason(errno code: Int32, path: String) -> String {
    if code == ENOENT {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            return "the folder \(dir) does not exist"
        }
        if !isDir.boolValue { return "\(dir) is a file, not a folder" }
    }
    return String(cString: strerror(code))
}

/// A one-line reason for a Foundation error (a Cocoa error of `Data.write`, `FileHandle`, …) on
/// `path`: the POSIX reason it carries (see `ioFailureReason(errno:path:)`), else its localized
/// description.
func ioFailureReason(_ error: Error, path: String) -> String {
    if let code = posixCode(of: error) { return ioFailureReason(errno: code, path: path) }
    return (error as NSError).localizedDescription
}
