import Dispatch
import Foundation

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
