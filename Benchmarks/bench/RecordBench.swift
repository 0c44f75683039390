import Foundation
import GradNormIR
import TransformerLite
#if canImport(Glibc)
import Glibc
#endif

/// Section 2: the GradNormIR record — 1 query + 1 positive + 4 negatives of T tokens each, forward,
/// InfoNCE, backward and gradient norm — per record, against the sgemm roofline and, when a Python
/// with torch is importable, against PyTorch running the same records (Benchmarks/torch_record_bench.py).
struct RecordBench {
    let retriever: Retriever
    let reps: Int
    let lengths = [64, 128, 256, 512]
    let sequences = 6
    let forward: ForwardBench

    /// The same ids as torch_record_bench.py: [CLS] + T−2 ids spread over the vocabulary + [SEP].
    func recordIds(_ T: Int) -> [[Int]] {
        let first = 999, span = retriever.config.vocabSize - first
        return (0..<sequences).map { i in
            [retriever.tokenizer.clsId] + (0..<(T - 2)).map { j in first + (j * 7919 + i * 104_729 + 17) % span }
                + [retriever.tokenizer.sepId]
        }
    }

    /// Forward + backward FLOPs of a record: 3 × the forward (the backward does two products for
    /// each forward product: dX and dW; for attention dP, dV, dQ, dK), elementwise work not counted.
    func recordFlops(_ T: Int) -> Double { 3 * forward.forwardFlops(batch: sequences, length: T) }

    /// Runs PyTorch on the same records, if torch is importable; nil otherwise (with a note why).
    func torchResults(threadCounts: [Int]) -> [String: Double]? {
        let script = "Benchmarks/torch_record_bench.py"
        guard FileManager.default.fileExists(atPath: script) else {
            note("bench: \(script) not found (run from the package root): PyTorch comparison skipped")
            return nil
        }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import torch"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return nil }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else {
            note("bench: python3 cannot import torch: PyTorch comparison skipped")
            return nil
        }
        note("bench: running PyTorch on the same records (\(script))…")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--model", retriever.checkpoint.folder,
                       "--lengths", lengths.map(String.init).joined(separator: ","),
                       "--threads", threadCounts.map(String.init).joined(separator: ","),
                       "--reps", String(reps)]
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = obj["results"] as? [[String: Any]] else {
            note("bench: the PyTorch script failed: comparison skipped")
            return nil
        }
        var byKey: [String: Double] = [:]
        for r in results {
            if let t = r["threads"] as? Int, let T = r["tokens"] as? Int, let s = r["seconds_per_record"] as? Double {
                byKey["\(t)/\(T)"] = s
                if let l = r["loss"] as? Double { byKey["\(t)/\(T)/loss"] = l }
                if let g = r["grad_norm"] as? Double { byKey["\(t)/\(T)/norm"] = g }
            }
        }
        byKey["version"] = 0
        return byKey
    }

    func run(threadCounts: [Int], roofline: [Int: Double]) -> [[String: Any]] {
        var json: [[String: Any]] = []
        var rows: [(threads: Int, T: Int, seconds: Double, gflops: Double, loss: Double, norm: Double)] = []
        for threads in threadCounts {
            BLAS.setThreads(threads)
            let scorer = RecordGradient(retriever: retriever)
            for T in lengths {
                note("bench: record 6×\(T), \(threads) thread(s)…")
                let ids = recordIds(T)
                var last: RecordResult?
                let t = median(measure(reps: reps) {
                    last = scorer.compute(query: ids[0], positive: ids[1], negatives: Array(ids[2...]))
                })
                rows.append((threads, T, t, recordFlops(T) / t / 1e9, last?.loss ?? .nan, last?.gradNorm ?? .nan))
            }
        }
        let torch = torchResults(threadCounts: threadCounts)
        var table = Table(["threads", "T", "ms/record", "records/s", "GFLOP/s", "% of roofline",
                           "PyTorch ms/record", "speed-up vs PyTorch", "loss", "grad norm", "PyTorch grad norm"])
        for r in rows {
            let roof = roofline[r.threads] ?? .nan
            let pt = torch?["\(r.threads)/\(r.T)"]
            let ptNorm = torch?["\(r.threads)/\(r.T)/norm"]
            table.add(["\(r.threads)", "\(r.T)", fmt(r.seconds * 1000), fmt(1 / r.seconds, 2), fmt(r.gflops),
                       fmt(100 * r.gflops / roof) + "%", pt.map { fmt($0 * 1000) } ?? "–",
                       pt.map { fmt($0 / r.seconds, 2) + "×" } ?? "–",
                       String(format: "%.5f", r.loss), String(format: "%.4f", r.norm),
                       ptNorm.map { String(format: "%.4f", $0) } ?? "–"])
            var entry: [String: Any] = ["threads": r.threads, "tokens": r.T, "seconds_per_record": r.seconds,
                                        "records_per_s": 1 / r.seconds, "gflops": r.gflops,
                                        "roofline_gflops": roof, "loss": r.loss, "grad_norm": r.norm]
            if let pt { entry["torch_seconds_per_record"] = pt; entry["speedup_vs_torch"] = pt / r.seconds }
            json.append(entry)
        }
        print("")
        print("## GradNormIR record: forward + InfoNCE + backward + gradient norm (6 sequences × T tokens)")
        print("")
        print("FLOPs = 3 × forward (analytic); roofline = section 1's sgemm figure at the same thread count.")
        if torch == nil { print("PyTorch: not measured (python3 with torch not importable).") }
        print("")
        print(table.render())
        return json
    }
}

/// Peak resident memory of a child `gradnormir gradnorm` on a record of 6 × 512 tokens, in MB,
/// read from getrusage(RUSAGE_CHILDREN) — nil when the program is not built next to the bench.
func peakMemoryOfRecord512(model: String) -> Double? {
    let program = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("gradnormir")
    guard FileManager.default.isExecutableFile(atPath: program.path) else { return nil }
    let long = (0..<700).map { "word\($0 % 97) token\($0 % 13)" }.joined(separator: " ")
    let p = Process()
    p.executableURL = program
    p.arguments = ["gradnorm", "--model", model, "--max-length", "512", "--query", long, "--positive", long + " a"]
        + (0..<4).flatMap { ["--negative", long + " n\($0)"] }
    p.standardOutput = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
