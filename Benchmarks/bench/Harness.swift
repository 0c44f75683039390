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
