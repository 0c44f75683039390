import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock on an output for the whole of a run, so that two runs never write the same
/// output (a second one would silently interleave or overwrite the first one's work).
///
/// The lock is a POSIX record lock (`fcntl` F_SETLK, write lock over the whole file) on the file
/// `path` (created if needed; it holds the locking process's pid, for people). The kernel drops it
/// when the process ends, however it ends (a `kill -9` leaves no stale lock), and a second
/// process learns the holder's pid from F_GETLK. The lock file is left in place.
public final class OutputLock {
    public let path: String
    private let fd: Int32

    /// Takes the lock or throws `.outputInUse` (naming the holder's pid) at once; `.io` when the
    /// lock file cannot be created.
    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let folder = (path as NSString).deletingLastPathComponent
            let reason = errno == ENOENT ? "the folder \(folder.isEmpty ? "." : folder) does not exist"
                : String(cString: strerror(errno))
            throw GradNormIRError.io(path: path, reason: "cannot create the lock file: \(reason)")
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        if fcntl(fd, F_SETLK, &lock) != 0 {
            let reason = errno
            var holder = flock()
            holder.l_type = Int16(F_WRLCK)
            holder.l_whence = Int16(SEEK_SET)
            let pid: Int32? = fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != Int16(F_UNLCK) ? holder.l_pid : nil
            close(fd)
            guard reason == EACCES || reason == EAGAIN else {
                throw GradNormIRError.io(path: path, reason: "cannot lock: \(String(cString: strerror(reason)))")
            }
            throw GradNormIRError.outputInUse(path: path, pid: pid)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBufferPointer { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(fd) }

    /// The lock file of an output file: `FILE.lock` beside it.
    public static func path(forFile file: String) -> String { file + ".lock" }

    /// The lock file of an output folder: `FOLDER/.lock`.
    public static func path(forFolder folder: String) -> String {
        (folder as NSString).appendingPathComponent(".lock")
    }
}
