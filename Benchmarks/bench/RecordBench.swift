import Foundation
import GradNormIR
import TransformerLite

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
    func recordIds(_ lengths: [Int]) -> [[Int]] { Self.recordIds(lengths, retriever: retriever) }

    static func recordIds(_ lengths: [Int], retriever: Retriever) -> [[Int]] {
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

    /// Starts PyTorch's record server on the same model, if torch is importable; nil otherwise
    /// (with a note why).
    func startTorch() -> PythonServer? {
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
        note("bench: starting PyTorch on the same records (\(script) --serve)…")
        let server = PythonServer(arguments: [script, "--serve", "--model", retriever.checkpoint.folder])
        if server == nil { note("bench: the PyTorch script did not start: comparison skipped") }
        return server
    }

    /// One measured row: the engine's and PyTorch's times of the same record, repetition by
    /// repetition (A B A B …), and the sgemm roofline measured just before.
    struct Row {
        let threads: Int
        let name: String
        let lengths: [Int]
        let roofline: Double
        var engine: [Double] = []
        var torch: [Double] = []
        var loss = Double.nan, norm = Double.nan, torchNorm = Double.nan
        var seconds: Double { median(engine) }
        /// Per-pair ratios PyTorch / engine: their median and range.
        var ratios: [Double] { zip(torch, engine).map { $0 / $1 } }
    }

    func run(threadCounts: [Int]) -> (json: [[String: Any]], contended: Bool) {
        let cases: [(name: String, lengths: [Int])] = lengths.map { ("6×\($0)", Array(repeating: $0, count: sequences)) }
            + shapes.map { ($0.map(String.init).joined(separator: "/"), $0) }
        var server = startTorch()
        var rows: [Row] = []
        // One engine per thread count, so each keeps its own workspace.
        let scorers = threadCounts.map { _ in RecordGradient(retriever: retriever) }
        for c in cases {
            // Every thread count's repetitions of this record alternate round by round (1 thread,
            // PyTorch, 2 threads, PyTorch, 1 thread, …), so that a change in the machine's load hits
            // all of them alike, and each round gives a 2-thread/1-thread ratio of its own.
            note("bench: record \(c.name), \(threadCounts.map(String.init).joined(separator: "/")) thread(s) alternating\(server == nil ? "" : ", interleaved with PyTorch")…")
            let ids = recordIds(c.lengths)
            var caseRows: [Row] = threadCounts.map { threads in
                // The roofline right beside the figure: OpenBLAS's own threads.
                BLAS.setLibraryThreads(threads)
                return Row(threads: threads, name: c.name, lengths: c.lengths,
                           roofline: forward.roofline(tokens: forward.tokensPerBatch).aggregate)
            }
            for round in -2..<reps {  // two untimed rounds first
                for (k, threads) in threadCounts.enumerated() {
                    BLAS.setThreads(threads)
                    let t0 = now()
                    let r = scorers[k].compute(query: ids[0], positive: ids[1], negatives: Array(ids[2...]))
                    let t = now() - t0
                    if round >= 0 { caseRows[k].engine.append(t) }
                    caseRows[k].loss = r.loss
                    caseRows[k].norm = r.gradNorm
                    guard let s = server else { continue }
                    guard let pt = s.record(threads: threads, lengths: c.lengths, warmup: 0) else {
                        note("bench: PyTorch stopped answering: comparison skipped from here")
                        server = nil
                        continue
                    }
                    if round >= 0 { caseRows[k].torch.append(pt.seconds) }
                    caseRows[k].torchNorm = pt.gradNorm
                }
            }
            // A row whose PyTorch pairs are incomplete (the script stopped) shows no comparison.
            for i in caseRows.indices where caseRows[i].torch.count != caseRows[i].engine.count { caseRows[i].torch = [] }
            rows += caseRows
        }
        BLAS.setThreads(threadCounts.max() ?? 1)
        rows = threadCounts.flatMap { t in rows.filter { $0.threads == t } }  // by thread count, then case
        server?.stop()
        // Contended: the 2-thread roofline beside a figure is below 1.6× the 1-thread one beside the same record.
        let oneThread = Dictionary(rows.filter { $0.threads == 1 }.map { ($0.name, $0.roofline) }, uniquingKeysWith: { a, _ in a })
        func contended(_ r: Row) -> Bool {
            guard r.threads == 2, let one = oneThread[r.name] else { return false }
            return r.roofline < 1.6 * one
        }
        let anyContended = rows.contains(where: contended)
        let measuredTorch = rows.contains { !$0.torch.isEmpty }
        var table = MarkdownTable(["threads", "record (tokens per sequence)", "real tokens", "ms/record", "records/s", "GFLOP/s",
                                   "roofline GFLOP/s (beside)", "% of roofline", "PyTorch ms/record",
                                   "speed-up vs PyTorch (median of pairs)", "pair range", "grad norm", "PyTorch grad norm"])
        var json: [[String: Any]] = []
        for r in rows {
            let gflops = recordFlops(r.lengths) / r.seconds / 1e9
            let ratios = r.ratios
            let hasTorch = !ratios.isEmpty
            table.add(["\(r.threads)" + (contended(r) ? " (contended)" : ""), r.name, "\(r.lengths.reduce(0, +))",
                       fmt(r.seconds * 1000), fmt(1 / r.seconds, 2), fmt(gflops), fmt(r.roofline),
                       fmt(100 * gflops / r.roofline) + "%", hasTorch ? fmt(median(r.torch) * 1000) : "–",
                       hasTorch ? fmt(median(ratios), 2) + "×" : "–",
                       hasTorch ? fmt(ratios.min()!, 2) + "–" + fmt(ratios.max()!, 2) : "–",
                       String(format: "%.4f", r.norm), hasTorch ? String(format: "%.4f", r.torchNorm) : "–"])
            var entry: [String: Any] = ["threads": r.threads, "record": r.name, "lengths": r.lengths,
                                        "seconds_per_record": r.seconds, "records_per_s": 1 / r.seconds,
                                        "gflops": gflops, "loss": r.loss, "grad_norm": r.norm,
                                        "roofline_gflops": r.roofline, "fraction_of_roofline": gflops / r.roofline,
                                        "engine_seconds": r.engine]
            if r.threads == 2 { entry["contended"] = contended(r) }
            if hasTorch {
                entry["torch_seconds_per_record"] = median(r.torch)
                entry["torch_seconds"] = r.torch
                entry["speedup_vs_torch"] = median(ratios)
                entry["speedup_vs_torch_range"] = [ratios.min()!, ratios.max()!]
                entry["torch_grad_norm"] = r.torchNorm
            }
            json.append(entry)
        }
        print("")
        print("## GradNormIR record: forward + InfoNCE + backward + gradient norm (query, positive, 4 negatives)")
        print("")
        print("FLOPs = 3 × forward on the real tokens (analytic); the roofline is OpenBLAS's sgemm on the encoder's")
        print("shapes, measured at each thread count just before the record's repetitions. Per record, \(reps) rounds")
        print("after 2 untimed ones: in each, the engine and PyTorch alternate (A B A B …, same records, the other")
        print("process idle meanwhile) at every thread count in turn; the speed-up is the median of the per-pair")
        print("ratios, with their range.")
        print("Fixed-length records (6×T) are the same work for both; variable-length records are run by PyTorch")
        print("padded to their longest sequence with a key mask (as the authors' code does), by the engine packed")
        print("without padding.")
        if !measuredTorch { print("PyTorch: not measured (--quick, --no-torch, or python3 cannot import torch).") }
        if anyContended {
            print("**Contended run:** beside some 2-thread figures the 2-thread roofline was below 1.6× the 1-thread one")
            print("(the second core was busy); those rows are marked.")
        }
        print("")
        print(table.render())
        let scaling = scalingRows(rows)
        if !scaling.isEmpty {
            var t = MarkdownTable(["record", "engine 2-thread / 1-thread speed-up (median of rounds)", "round range",
                                   "sgemm 2-thread / 1-thread (rooflines beside)", "engine's share of the sgemm's speed-up"])
            for r in scaling {
                t.add([r.name, fmt(r.engine, 2) + "×", fmt(r.range.0, 2) + "–" + fmt(r.range.1, 2), fmt(r.sgemm, 2) + "×",
                       fmt(100 * r.engine / r.sgemm) + "%"])
                if let i = json.firstIndex(where: { ($0["record"] as? String) == r.name && ($0["threads"] as? Int) == 2 }) {
                    json[i]["speedup_vs_1_thread"] = r.engine
                    json[i]["speedup_vs_1_thread_range"] = [r.range.0, r.range.1]
                    json[i]["roofline_speedup_vs_1_thread"] = r.sgemm
                }
            }
            print("")
            print("Two workers against one on the same record (the two alternate round by round), beside the sgemm's")
            print("own 2-thread gain:")
            print("")
            print(t.render())
        }
        return (json, anyContended)
    }
}

extension RecordBench {
    /// Per record measured at 1 and 2 threads: the engine's speed-up from the second worker — the
    /// median and range of the per-round ratios (the two alternate round by round) — and the sgemm
    /// roofline's (both rooflines measured just before the record's rounds).
    func scalingRows(_ rows: [Row]) -> [(name: String, engine: Double, range: (Double, Double), sgemm: Double)] {
        rows.filter { $0.threads == 2 }.compactMap { two in
            guard let one = rows.first(where: { $0.threads == 1 && $0.name == two.name }) else { return nil }
            let ratios = zip(one.engine, two.engine).map { $0 / $1 }
            return (two.name, median(ratios), (ratios.min()!, ratios.max()!), two.roofline / one.roofline)
        }
    }
}

extension PythonServer {
    /// PyTorch's seconds and gradient norm for one record of torch_record_bench.py's ids (after
    /// `warmup` untimed ones); nil when the process failed.
    func record(threads: Int, lengths: [Int], warmup: Int) -> (seconds: Double, gradNorm: Double)? {
        guard let obj = ask(["threads": threads, "lengths": lengths, "warmup": warmup]),
              let s = obj["seconds"] as? Double, let g = obj["grad_norm"] as? Double else { return nil }
        return (s, g)
    }
}
