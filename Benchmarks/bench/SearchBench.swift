import Foundation
import GradNormIR
import TransformerLite

/// Section 5 (opt-in, `--sections search`): exact top-k search. `VectorIndex.search` (blocked
/// sgemm S = Q·Vᵀ + a k-entry heap per query) against FAISS's exact flat inner-product index
/// (`faiss.IndexFlatIP`, run by Benchmarks/faiss_search_bench.py when python3 can import faiss)
/// on seeded random unit vectors of dimension 384: 40,000 and 1,000,000 vectors (40,000 only with
/// `--quick`), 1,000 unit queries, k = 100.
///
/// Verify, then time: before timing, the engine's top-k of a sample of queries is checked against
/// a Float64 brute-force reference. After timing, the engine's and FAISS's lists are compared
/// query by query: the same set of k indices, except indices whose score lies within 1e-6 of the
/// other list's k-th score (a tie at the cut, which either side may break either way).
/// FLOPs per search: 2·n·q·d (the product only; the selection is not counted).
struct SearchBench {
    let reps: Int
    let quick: Bool
    let dimension = 384
    let k = 100
    let queryCount = 1000
    /// Seeds of the vectors and of the queries (the same queries for every size; the 40k vectors
    /// are the first 40k of the 1M).
    let vectorSeed: UInt64 = 12
    let querySeed: UInt64 = 13
    /// Queries checked against the Float64 reference before timing.
    let referenceQueries = 8
    /// |score difference| under which two results count as tied (at the cut).
    let tieTolerance = 1e-6
    let script = "Benchmarks/faiss_search_bench.py"

    var sizes: [Int] { quick ? [40_000] : [40_000, 1_000_000] }

    /// Timed repetitions for an index of n vectors: fewer for 1M (about 5–10 s per search on one
    /// core).
    func repetitions(_ n: Int) -> Int { n > 100_000 ? min(reps, 5) : reps }

    /// One query's top-k, best first.
    struct TopK {
        var indices: [Int]
        var scores: [Double]
    }

    /// How the lists of a set of queries agree (`agreement(_:_:tolerance:)` per query).
    struct Agreement {
        /// Queries whose index sets differ beyond ties at the cut.
        var mismatching = 0
        /// Queries whose index sets differ only by ties at the cut.
        var tiedAtCut = 0
        /// Largest |score difference| over indices present in both lists.
        var maxScoreDifference = 0.0

        init(_ a: [TopK], _ b: [TopK], tolerance: Double) {
            precondition(a.count == b.count, "SearchBench: \(a.count) result lists against \(b.count)")
            for (x, y) in zip(a, b) {
                let r = SearchBench.agreement(x, y, tolerance: tolerance)
                if !r.agree { mismatching += 1 } else if !r.identical { tiedAtCut += 1 }
                maxScoreDifference = max(maxScoreDifference, r.maxDifference)
            }
        }

        var summary: String {
            "\(mismatching) mismatching, \(tiedAtCut) differing only by ties at the cut, max |Δscore| "
                + String(format: "%.1e", maxScoreDifference)
        }
        var json: [String: Any] {
            ["mismatching_queries": mismatching, "tied_at_cut_queries": tiedAtCut, "max_abs_score_difference": maxScoreDifference]
        }
    }

    /// Whether two top-k lists of one query (best first) hold the same indices — `identical` —
    /// or the same up to ties at the cut — `agree`: an index in one list only is accepted when
    /// its score is within `tolerance` of the other list's last (k-th) score. `maxDifference`:
    /// the largest |score difference| over the indices in both lists.
    static func agreement(_ a: TopK, _ b: TopK, tolerance: Double)
        -> (identical: Bool, agree: Bool, maxDifference: Double) {
        // (A repeated index — FAISS pads short lists with −1 — keeps its first score.)
        let inA = Dictionary(zip(a.indices, a.scores), uniquingKeysWith: { first, _ in first })
        let inB = Dictionary(zip(b.indices, b.scores), uniquingKeysWith: { first, _ in first })
        var maxDifference = 0.0, identical = a.indices.count == b.indices.count, agree = identical
        for (i, s) in inA {
            if let t = inB[i] {
                maxDifference = max(maxDifference, abs(s - t))
            } else {
                identical = false
                if let cut = b.scores.last, abs(s - cut) > tolerance { agree = false }
            }
        }
        for (i, t) in inB where inA[i] == nil {
            identical = false
            if let cut = a.scores.last, abs(t - cut) > tolerance { agree = false }
        }
        return (identical, agree, maxDifference)
    }

    /// `count` seeded random unit vectors: components i.i.d. N(0, 1) (Box–Muller on SplitMix64),
    /// each vector divided by its L2 norm (in Float64), i.e. uniform on the sphere.
    static func unitVectors(count: Int, dimension d: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        var g = [Double](repeating: 0, count: d)
        return (0..<count).map { _ in
            var j = 0
            while j < d {
                let r = (-2 * log(1 - rng.nextUnitDouble())).squareRoot()  // 1 − u ∈ (0, 1]
                let angle = 2 * Double.pi * rng.nextUnitDouble()
                g[j] = r * cos(angle)
                if j + 1 < d { g[j + 1] = r * sin(angle) }
                j += 2
            }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return g.map { Float($0 / norm) }
        }
    }

    /// Float64 brute-force top-k of each query over `rows`: best first, ties by smaller index.
    static func referenceTopK(rows: [[Float]], queries: [[Float]], k: Int) -> [TopK] {
        let d = queries.first?.count ?? 0
        let kk = min(k, rows.count)
        // Sorted best-first lists, grown by insertion: on random data only ~k·ln(n/k) inserts.
        var best = [TopK](repeating: TopK(indices: [], scores: []), count: queries.count)
        let q64 = queries.map { $0.map(Double.init) }
        for (i, v) in rows.enumerated() {
            v.withUnsafeBufferPointer { v in
                for (qi, q) in q64.enumerated() {
                    var s = 0.0
                    q.withUnsafeBufferPointer { q in for j in 0..<d { s += Double(v[j]) * q[j] } }
                    if best[qi].scores.count == kk, s <= best[qi].scores[kk - 1] { continue }
                    // First position whose score is below s (equal scores keep the smaller index first).
                    var lo = 0, hi = best[qi].scores.count
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if best[qi].scores[mid] >= s { lo = mid + 1 } else { hi = mid }
                    }
                    best[qi].scores.insert(s, at: lo)
                    best[qi].indices.insert(i, at: lo)
                    if best[qi].scores.count > kk { best[qi].scores.removeLast(); best[qi].indices.removeLast() }
                }
            }
        }
        return best
    }

    static func topK(_ hits: [[Hit]]) -> [TopK] {
        hits.map { TopK(indices: $0.map(\.index), scores: $0.map { Double($0.score) }) }
    }

    /// FAISS's search of the vectors and queries in `file` at `threads` OpenMP threads; nil (with a
    /// note) when the script fails.
    func runFaiss(file: String, threads: Int, reps: Int)
        -> (version: String, seconds: Double, all: [Double], results: [TopK])? {
        let (status, object) = runPythonJSON([script, "--input", file, "--k", String(k), "--threads", String(threads),
                                              "--reps", String(reps), "--warmup", "1"])
        guard let obj = object,
              let seconds = obj["seconds"] as? Double, let all = obj["seconds_all"] as? [Double],
              let indices = obj["indices"] as? [[Int]], let scores = obj["scores"] as? [[Double]],
              indices.count == scores.count else {
            note("bench: \(script) failed (status \(status)): FAISS comparison skipped")
            return nil
        }
        let results = zip(indices, scores).map { TopK(indices: $0, scores: $1) }
        return ((obj["faiss_version"] as? String) ?? "?", seconds, all, results)
    }

    func run(threadCounts: [Int]) throws -> [String: Any] {
        let d = dimension
        let flopsPerQueryVector = 2.0 * Double(d)
        var faiss = FileManager.default.fileExists(atPath: script) && pythonImports("faiss")
        if !faiss {
            note(FileManager.default.fileExists(atPath: script)
                 ? "bench: FAISS not installed: pip install faiss-cpu (the search section times the engine alone)"
                 : "bench: \(script) not found (run from the package root): FAISS comparison skipped")
        }
        let queries = Self.unitVectors(count: queryCount, dimension: d, seed: querySeed)
        var table = MarkdownTable(["vectors", "threads", "engine ms", "engine GFLOP/s", "FAISS ms", "FAISS GFLOP/s",
                                   "FAISS/engine", "queries mismatching", "ties at the cut", "max Δscore"])
        var rows: [[String: Any]] = []
        var checks: [String] = []
        var checkJSON: [[String: Any]] = []
        var faissVersion: String?
        for n in sizes {
            let reps = repetitions(n)
            let file = (NSTemporaryDirectory() as NSString)
                .appendingPathComponent("gradnormir-search-\(ProcessInfo.processInfo.processIdentifier)-\(n).safetensors")
            defer { try? FileManager.default.removeItem(atPath: file) }
            // The vectors live once in the index; the arrays they are made from end with this scope.
            note("bench: search, \(n) random unit vectors of dimension \(d)…")
            let sample = (0..<referenceQueries).map { $0 * queryCount / referenceQueries }
            let index: VectorIndex
            let reference: [TopK]
            do {
                let vectors = Self.unitVectors(count: n, dimension: d, seed: vectorSeed)
                if faiss {
                    var flat: [Float] = []
                    flat.reserveCapacity(n * d)
                    for v in vectors { flat += v }
                    try SafeTensorsFile.write(tensors: [("vectors", [n, d], flat), ("queries", [queryCount, d], queries.flatMap { $0 })],
                                              metadata: ["generator": "GradNormIR bench search section: N(0,1) components, L2-normalised",
                                                         "vector_seed": "\(vectorSeed)", "query_seed": "\(querySeed)"],
                                              to: file)
                }
                note("bench: search, Float64 reference for \(sample.count) queries…")
                reference = Self.referenceTopK(rows: vectors, queries: sample.map { queries[$0] }, k: k)
                index = VectorIndex(dimension: d, vectors: vectors)
            }

            // Verify: the engine's top-k of the sampled queries against the Float64 reference.
            BLAS.setThreads(threadCounts.max() ?? 1)
            let check = Agreement(Self.topK(index.search(sample.map { queries[$0] }, k: k)), reference, tolerance: tieTolerance)
            checks.append("- \(n) vectors, engine vs Float64 reference on \(sample.count) queries: \(check.summary)")
            checkJSON.append(["vectors": n, "queries": sample.count].merging(check.json) { a, _ in a })
            if check.mismatching > 0 { note("bench: WARNING: the engine's search disagrees with the Float64 reference at \(n) vectors") }

            var engineLists: [[[Hit]]] = []
            for threads in threadCounts {
                BLAS.setThreads(threads)
                note("bench: search, \(n) vectors × \(queryCount) queries, k=\(k), engine, \(threads) thread(s)…")
                var hits: [[Hit]] = []
                let times = measure(warmup: 1, reps: reps) { hits = index.search(queries, k: k) }
                engineLists.append(hits)
                let t = median(times)
                let flops = flopsPerQueryVector * Double(n) * Double(queryCount)
                var entry: [String: Any] = ["vectors": n, "queries": queryCount, "dimension": d, "k": k, "threads": threads,
                                            "reps": reps, "engine_seconds": t, "engine_seconds_all": times,
                                            "engine_gflops": flops / t / 1e9]
                var cells = ["\(n)", "\(threads)", fmt(t * 1000), fmt(flops / t / 1e9)]
                let ft = faiss ? runFaiss(file: file, threads: threads, reps: reps) : nil
                if faiss && ft == nil { faiss = false }
                if let ft {
                    faissVersion = ft.version
                    let a = Agreement(Self.topK(hits), ft.results, tolerance: tieTolerance)
                    entry.merge(["faiss_seconds": ft.seconds, "faiss_seconds_all": ft.all, "faiss_gflops": flops / ft.seconds / 1e9,
                                 "ratio_faiss_over_engine": ft.seconds / t]) { a, _ in a }
                    entry.merge(a.json) { a, _ in a }
                    cells += [fmt(ft.seconds * 1000), fmt(flops / ft.seconds / 1e9), fmt(ft.seconds / t, 2) + "×",
                              "\(a.mismatching) / \(queryCount)", "\(a.tiedAtCut)", String(format: "%.1e", a.maxScoreDifference)]
                } else {
                    cells += ["–", "–", "–", "–", "–", "–"]
                }
                table.add(cells)
                rows.append(entry)
            }
            let sameAcrossThreads = engineLists.dropFirst().allSatisfy { $0 == engineLists[0] }
            checks.append("- \(n) vectors, engine results at \(threadCounts.map(String.init).joined(separator: " and ")) thread(s): "
                          + (sameAcrossThreads ? "bit-identical" : "DIFFERENT"))
        }

        print("")
        print("## Exact top-k search: VectorIndex (sgemm + heaps) vs FAISS IndexFlatIP")
        print("")
        print("\(queryCount) random unit queries against n random unit vectors (dimension \(d), seeded), k = \(k), all queries in one")
        print("call; median of \(reps) timed searches after 1 warm-up (at most 5 at 1M). GFLOP/s = 2·n·q·d per search (the")
        print("product only). Threads: engine workers (each on single-threaded OpenBLAS) / FAISS OpenMP threads.")
        print("FAISS/engine > 1: the engine is faster. Agreement: per query, the same k indices except ties within")
        print("\(String(format: "%.0e", tieTolerance)) at the cut; max Δscore: largest |score difference| over indices in both lists.")
        print(faissVersion.map { "FAISS: \($0) (Python wheel or Debian package, bench only)." }
              ?? "FAISS: not measured (FAISS not installed: pip install faiss-cpu).")
        if quick { print("--quick: 40,000 vectors only.") }
        print("")
        for c in checks { print(c) }
        print("")
        print(table.render())
        var json: [String: Any] = ["dimension": d, "k": k, "queries": queryCount, "vector_seed": Int(vectorSeed),
                                   "query_seed": Int(querySeed), "tie_tolerance": tieTolerance, "rows": rows,
                                   "float64_check": checkJSON]
        json["faiss_version"] = faissVersion ?? "not installed"
        return json
    }
}
