import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Runs `body` `warmup` times untimed, then `reps` times timed; returns the sorted times.
func measure(warmup: Int = 2, reps: Int, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    var t: [Double] = []
    for _ in 0..<reps {
        let t0 = now()
        body()
        t.append(now() - t0)
    }
    return t.sorted()
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    if s.isEmpty { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Formats a number with a fixed count of decimals.
func fmt(_ x: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", x) }

/// Progress and notes go to standard error, tables to standard output.
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Whether `python3 -c "import MODULE"` succeeds.
func pythonImports(_ module: String) -> Bool {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import \(module)"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}

/// Runs `python3 ARGUMENTS` (a comparison script of the bench) and parses the JSON object it
/// prints on standard output; nil object when it could not start, failed, or printed no object.
func runPythonJSON(_ arguments: [String]) -> (status: Int32, object: [String: Any]?) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3"] + arguments
    let out = Pipe()
    p.standardOutput = out
    guard (try? p.run()) != nil else { return (-1, nil) }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return (p.terminationStatus, nil) }
    return (0, try? JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// A comparison script kept running (`python3 SCRIPT --serve …`): it prints "ready" once loaded,
/// then answers each JSON request line on its standard input with one JSON line — so the bench can
/// alternate its own repetitions with the script's (A B A B …) on the same inputs.
final class PythonServer {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private var buffer = Data()

    /// nil when the script did not start or did not say "ready".
    init?(arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardInput = input
        process.standardOutput = output
        signal(SIGPIPE, SIG_IGN)  // a dead server must fail a write, not end the bench
        guard (try? process.run()) != nil, readLine() == "ready" else {
            if process.isRunning { process.terminate() }
            return nil
        }
    }

    private func readLine() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                return line
            }
            let more = output.fileHandleForReading.availableData
            if more.isEmpty { return nil }
            buffer.append(more)
        }
    }

    /// The answer to one request; nil when the process failed or answered with no JSON object.
    func ask(_ request: [String: Any]) -> [String: Any]? {
        guard process.isRunning, var line = try? JSONSerialization.data(withJSONObject: request) else { return nil }
        line.append(UInt8(ascii: "\n"))
        guard (try? input.fileHandleForWriting.write(contentsOf: line)) != nil, let answer = readLine() else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
