import Foundation
import GradNormIR
import TransformerLite
#if canImport(Glibc)
import Glibc
#endif

/// The memory section: what one record of 6 × 512 tokens costs in memory, with the
/// activations kept (the default) and with the feed-forward pre-activations recomputed
/// (`--low-memory`), against PyTorch on the same shape — each a child process of its own whose
/// peak resident set (model load included) is read with wait4 — and what the recomputation costs
/// in time (the two modes alternate record by record in this process, same record).
struct MemoryBench {
    let retriever: Retriever
    let reps: Int
    /// Whether to run PyTorch's side (its script's `--memory`) when torch is importable.
    let torch: Bool
    let tokens = 512

    func run() -> [String: Any] {
        var json: [String: Any] = ["tokens_per_sequence": tokens, "sequences": 6]
        let folder = retriever.checkpoint.folder
        let engine = ActivationMemory.allCases.map { mode in (mode, enginePeak(model: folder, lowMemory: mode == .recomputeFeedForward)) }
        let torchPeak = torch && pythonImports("torch") ? torchPeakMB(model: folder) : nil

        // Time: the two modes alternate (A B A B …) on the same record, 1 thread.
        BLAS.setThreads(1)
        let ids = RecordBench.recordIds(Array(repeating: tokens, count: 6), retriever: retriever)
        let scorers = ActivationMemory.allCases.map { RecordGradient(retriever: retriever, memory: $0) }
        var times = scorers.map { _ in [Double]() }
        var norms = scorers.map { _ in Double.nan }
        note("bench: memory of a 6×\(tokens) record: timing both activation modes, alternating…")
        for rep in -2..<reps {
            for (k, s) in scorers.enumerated() {
                let t0 = now()
                norms[k] = s.compute(query: ids[0], positive: ids[1], negatives: Array(ids[2...])).gradNorm
                if rep >= 0 { times[k].append(now() - t0) }
            }
        }
        let ratios = zip(times[1], times[0]).map { $0 / $1 }

        var table = MarkdownTable(["", "peak RSS MB (model load included)", "ms/record (1 thread)", "time vs keeping all", "grad norm"])
        for (k, (mode, peak)) in engine.enumerated() {
            table.add(["engine, \(mode.rawValue)" + (mode == .recomputeFeedForward ? " (`--low-memory`)" : ""),
                       peak.map { fmt($0) } ?? "–", fmt(median(times[k]) * 1000),
                       k == 0 ? "1" : fmt(median(ratios), 3) + "× (pairs " + fmt(ratios.min()!, 3) + "–" + fmt(ratios.max()!, 3) + ")",
                       String(format: "%.4f", norms[k])])
            json[mode.rawValue] = ["peak_rss_mb": peak as Any, "seconds_per_record": median(times[k]), "seconds": times[k],
                                   "grad_norm": norms[k]]
        }
        json["time_ratio_recompute_vs_save_all"] = median(ratios)
        json["time_ratio_range"] = [ratios.min()!, ratios.max()!]
        if let torchPeak {
            table.add(["PyTorch (autograd)", fmt(torchPeak), "–", "–", "–"])
            json["torch_peak_rss_mb"] = torchPeak
        }
        print("")
        print("## Memory of one record (6 × \(tokens) tokens)")
        print("")
        print("Peak resident set of a child process running one record (`gradnormir gradnorm --max-length 512` on")
        print("six 512-token texts; PyTorch: `torch_record_bench.py --memory 512`), read with wait4. Times: the two")
        print("engine modes alternate record by record, \(reps) pairs after 2 warm-ups, medians; the results are the")
        print("same bits.")
        if torchPeak == nil { print("PyTorch: not measured (--quick, --no-torch, or python3 cannot import torch).") }
        print("")
        print(table.render())
        return json
    }

    /// Peak RSS in MB of `gradnormir gradnorm` on six 512-token texts, nil when the program is not
    /// built next to the bench or fails.
    func enginePeak(model: String, lowMemory: Bool) -> Double? {
        let program = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("gradnormir")
        guard FileManager.default.isExecutableFile(atPath: program.path) else {
            note("bench: \(program.path) not built: engine memory not measured")
            return nil
        }
        let long = (0..<700).map { "word\($0 % 97) token\($0 % 13)" }.joined(separator: " ")
        let args = ["gradnorm", "--model", model, "--max-length", "\(tokens)", "--query", long, "--positive", long + " a"]
            + (0..<4).flatMap { ["--negative", long + " n\($0)"] } + (lowMemory ? ["--low-memory"] : [])
        return childPeakMB(program.path, args)
    }

    /// PyTorch's peak RSS on one record of the same shape (its own getrusage, printed as JSON).
    func torchPeakMB(model: String) -> Double? {
        let r = runPythonJSON(["Benchmarks/torch_record_bench.py", "--model", model, "--memory", "\(tokens)"])
        return r.object?["peak_rss_mb"] as? Double
    }
}

/// Runs `program arguments` (standard output discarded) and returns its own peak resident set
/// in MB (wait4's rusage of that child alone); nil when it cannot start or exits non-zero.
func childPeakMB(_ program: String, _ arguments: [String]) -> Double? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, program, &actions, nil, argv, environ) == 0 else { return nil }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
    // Exited normally with status 0: (status & 0x7f) == 0 and (status >> 8) & 0xff == 0.
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { return nil }
    return Double(usage.ru_maxrss) / 1024
}
