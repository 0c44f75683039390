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
    /// A smoke-check run measures fewer record shapes.
    let quick: Bool
    var lengths: [Int] { quick ? [64, 128] : [64, 128, 256, 512] }
    /// Variable-length records (query, positive, 4 negatives), as real documents give: PyTorch runs
    /// them padded to their longest sequence with a key mask (as the authors' code does), the
    /// engine packs them without padding.
    var shapes: [[Int]] {
        let all = [[40, 60, 200, 35, 90, 128], [96, 180, 64, 240, 120, 150], [256, 300, 180, 420, 210, 512]]
        return quick ? Array(all.prefix(1)) : all
    }
    let sequences = 6
    let forward: ForwardBench
    /// Whether to run the PyTorch comparison when torch is importable.
    let torch: Bool

    /// The same ids as torch_record_bench.py: sequence i is [CLS] + lengths[i]−2 ids spread over
    /// the vocabulary + [SEP].
    func recordIds(_ lengths: [Int]) -> [[Int]] {
        let first = 999, span = retriever.config.vocabSize - first
        return lengths.enumerated().map { i, T in
            [retriever.tokenizer.clsId] + (0..<(T - 2)).map { j in first + (j * 7919 + i * 104_729 + 17) % span }
                + [retriever.tokenizer.sepId]
        }
    }

    /// Forward + backward FLOPs of a record on its real tokens: 3 × the forward (the backward does
    /// two products for each forward product: dX and dW; for attention dP, dV, dQ, dK).
    func recordFlops(_ lengths: [Int]) -> Double {
        3 * lengths.reduce(0) { $0 + forward.forwardFlops(batch: 1, length: $1) }
    }

    /// Runs PyTorch on the same records, if torch is importable; nil otherwise (with a note why).
    func torchResults(threadCounts: [Int]) -> [String: Double]? {
        guard torch else { return nil }
        let script = "Benchmarks/torch_record_bench.py"
        guard FileManager.default.fileExists(atPath: script) else {
            note("bench: \(script) not found (run from the package root): PyTorch comparison skipped")
            return nil
        }
        guard pythonImports("torch") else {
            note("bench: python3 cannot import torch: PyTorch comparison skipped")
            return nil
        }
        note("bench: running PyTorch on the same records (\(script))…")
        let (_, object) = runPythonJSON([script, "--model", retriever.checkpoint.folder,
                                         "--lengths", lengths.map(String.init).joined(separator: ","),
                                         "--shapes", shapes.map { $0.map(String.init).joined(separator: "/") }.joined(separator: ","),
                                         "--threads", threadCounts.map(String.init).joined(separator: ","),
                                         "--reps", String(reps)])
        guard let obj = object, let results = obj["results"] as? [[String: Any]] else {
            note("bench: the PyTorch script failed: comparison skipped")
            return nil
        }
        var byKey: [String: Double] = [:]
        for r in results {
            guard let t = r["threads"] as? Int, let s = r["seconds_per_record"] as? Double else { continue }
            let name = (r["shape"] as? String) ?? (r["tokens"] as? Int).map { "6×\($0)" } ?? "?"
            byKey["\(t)/\(name)"] = s
            if let g = r["grad_norm"] as? Double { byKey["\(t)/\(name)/norm"] = g }
        }
        return byKey
    }

    func run(threadCounts: [Int], roofline: [Int: Double]) -> [[String: Any]] {
        var json: [[String: Any]] = []
        let cases: [(name: String, lengths: [Int])] = lengths.map { ("6×\($0)", Array(repeating: $0, count: sequences)) }
            + shapes.map { ($0.map(String.init).joined(separator: "/"), $0) }
        var rows: [(threads: Int, name: String, lengths: [Int], seconds: Double, loss: Double, norm: Double)] = []
        for threads in threadCounts {
            BLAS.setThreads(threads)
            let scorer = RecordGradient(retriever: retriever)
            for c in cases {
                note("bench: record \(c.name), \(threads) thread(s)…")
                let ids = recordIds(c.lengths)
                var last: RecordResult?
                let t = median(measure(reps: reps) {
                    last = scorer.compute(query: ids[0], positive: ids[1], negatives: Array(ids[2...]))
                })
                rows.append((threads, c.name, c.lengths, t, last?.loss ?? .nan, last?.gradNorm ?? .nan))
            }
        }
        let torch = torchResults(threadCounts: threadCounts)
        var table = MarkdownTable(["threads", "record (tokens per sequence)", "real tokens", "ms/record", "records/s", "GFLOP/s",
                           "% of roofline", "PyTorch ms/record", "speed-up vs PyTorch", "grad norm", "PyTorch grad norm"])
        for r in rows {
            let roof = roofline[r.threads]
            let pt = torch?["\(r.threads)/\(r.name)"]
            let ptNorm = torch?["\(r.threads)/\(r.name)/norm"]
            let gflops = recordFlops(r.lengths) / r.seconds / 1e9
            table.add(["\(r.threads)", r.name, "\(r.lengths.reduce(0, +))", fmt(r.seconds * 1000), fmt(1 / r.seconds, 2),
                       fmt(gflops), roof.map { fmt(100 * gflops / $0) + "%" } ?? "–",
                       pt.map { fmt($0 * 1000) } ?? "–", pt.map { fmt($0 / r.seconds, 2) + "×" } ?? "–",
                       String(format: "%.4f", r.norm), ptNorm.map { String(format: "%.4f", $0) } ?? "–"])
            var entry: [String: Any] = ["threads": r.threads, "record": r.name, "lengths": r.lengths,
                                        "seconds_per_record": r.seconds, "records_per_s": 1 / r.seconds,
                                        "gflops": gflops, "loss": r.loss, "grad_norm": r.norm]
            if let roof { entry["roofline_gflops"] = roof }
            if let pt { entry["torch_seconds_per_record"] = pt; entry["speedup_vs_torch"] = pt / r.seconds }
            json.append(entry)
        }
        print("")
        print("## GradNormIR record: forward + InfoNCE + backward + gradient norm (query, positive, 4 negatives)")
        print("")
        print("FLOPs = 3 × forward on the real tokens (analytic); roofline = section 1's sgemm figure at the same")
        print("thread count. Fixed-length records (6×T) are the same work for both; variable-length records are")
        print("run by PyTorch padded to their longest sequence with a key mask (as the authors' code does),")
        print("by the engine packed without padding.")
        if torch == nil { print("PyTorch: not measured (python3 with torch not importable, or --no-torch).") }
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
