import Foundation
import GradNormIR

/// A line on standard error: progress, notes, warnings.
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Buffered standard output, one line at a time.
struct LineWriter {
    private var buffer = ""

    mutating func write(_ line: String) {
        buffer += line
        buffer += "\n"
        if buffer.utf8.count > 1 << 16 { flush() }
    }

    mutating func flush() {
        if !buffer.isEmpty { FileHandle.standardOutput.write(Data(buffer.utf8)); buffer = "" }
    }
}

/// Prints `value` as one JSON line on standard output (`JSONLineEncoder`'s style).
func printJSON<T: Encodable>(_ value: T) throws {
    print(try JSONLineEncoder().encode(value))
}

/// Progress on standard error: a redrawn bar with rate and ETA on a terminal, a plain line every
/// ten seconds otherwise.
struct ProgressReporter {
    let label: String
    let total: Int
    let isTerminal = isatty(STDERR_FILENO) != 0
    let start = Date()
    var lastPrint = Date.distantPast
    var startCount = 0

    init(label: String, total: Int, alreadyDone: Int = 0) {
        self.label = label
        self.total = total
        self.startCount = alreadyDone
    }

    mutating func update(_ done: Int, force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= (isTerminal ? 0.2 : 10) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - startCount) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        let etaText = eta.isFinite ? formatDuration(eta) : "?"
        let rateText = String(format: "%.2f/s", rate)
        if isTerminal {
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)  \(rateText)  ETA \(etaText)   ".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            FileHandle.standardError.write(Data("\(label): \(done)/\(total), \(rateText), ETA \(etaText)\n".utf8))
        }
    }
}

/// `42s`, `3m5s`, `1h2m`.
func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

/// Whether two paths name the same file or folder (`.`, `..` and symbolic links resolved).
func samePath(_ a: String, _ b: String) -> Bool {
    let resolved = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
    return resolved(a) == resolved(b)
}
