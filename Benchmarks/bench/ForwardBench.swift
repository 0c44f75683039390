import Foundation
import GradNormIR
import TransformerLite

/// Section 1: OpenBLAS sgemm on the encoder's own product shapes (the roofline), and the encoder's
/// forward throughput at 32, 128 and 512 tokens, with an analytic FLOP count.
struct ForwardBench {
    let retriever: Retriever
    let reps: Int
    /// Tokens per packed batch: batches hold `tokensPerBatch / T` sequences of T tokens.
    let tokensPerBatch = 2048
    let lengths = [32, 128, 512]

    var config: EncoderConfig { retriever.config }

    /// The four products of one layer for N tokens: (name, M, N, K) with Y (M×N) = X (M×K)·Wᵀ.
    func shapes(tokens n: Int) -> [(String, Int, Int, Int)] {
        let C = config.hiddenSize, I = config.intermediateSize
        return [("QKV", n, 3 * C, C), ("attn-out", n, C, C), ("FFN-in", n, I, C), ("FFN-out", n, C, I)]
    }

    /// Forward FLOPs of a batch: 2·N·(3C² + C² + 2CI) per layer for the projections plus
    /// 4·T²·C per sequence and layer for QKᵀ and P·V. Elementwise work is not counted.
    func forwardFlops(batch: Int, length T: Int) -> Double {
        let C = Double(config.hiddenSize), I = Double(config.intermediateSize), L = Double(config.numLayers)
        let N = Double(batch * T)
        return L * (2 * N * (4 * C * C + 2 * C * I) + Double(batch) * 4 * Double(T * T) * C)
    }

    /// sgemm GFLOP/s per shape and the FLOP-weighted aggregate (total FLOPs / total time).
    func roofline(tokens n: Int) -> (aggregate: Double, perShape: [(String, Double)]) {
        var totalFlops = 0.0, totalTime = 0.0
        var per: [(String, Double)] = []
        for (name, m, nOut, k) in shapes(tokens: n) {
            let a = FlatBuffer(count: m * k), w = FlatBuffer(count: nOut * k), y = FlatBuffer(count: m * nOut)
            a.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = Float(i % 7) * 0.01 } }
            w.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = Float(i % 5) * 0.01 } }
            let t = a.withUnsafeBufferPointer { ap in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
                measure(reps: reps) {
                    BLAS.gemm(transA: false, transB: true, m: m, n: nOut, k: k, a: ap.baseAddress!, lda: k,
                              b: wp.baseAddress!, ldb: k, beta: 0, c: yp.baseAddress!, ldc: nOut)
                }
            } } }
            let flops = 2.0 * Double(m * nOut * k)
            per.append((name, flops / median(t) / 1e9))
            totalFlops += flops
            totalTime += median(t)
        }
        return (totalFlops / totalTime / 1e9, per)
    }

    /// Returns the JSON rows.
    func run(threadCounts: [Int]) -> [[String: Any]] {
        var json: [[String: Any]] = []
        var roofTable = MarkdownTable(["threads", "tokens N"] + shapes(tokens: tokensPerBatch).map { "\($0.0) GFLOP/s" } + ["roofline GFLOP/s"])
        var fwdTable = MarkdownTable(["threads", "T", "batch", "ms/batch", "seq/s", "tokens/s", "GFLOP/s", "% of roofline"])
        let vocab = config.vocabSize
        let enc = retriever.makeEncoder()
        for threads in threadCounts {
            // The roofline is OpenBLAS's own multi-threaded sgemm; the engine then runs with
            // `threads` workers, each on single-threaded OpenBLAS.
            BLAS.setLibraryThreads(threads)
            note("bench: roofline, \(threads) thread(s)…")
            let roof = roofline(tokens: tokensPerBatch)
            BLAS.setThreads(threads)
            roofTable.add(["\(threads)", "\(tokensPerBatch)"] + roof.perShape.map { fmt($0.1) } + [fmt(roof.aggregate)])
            for T in lengths {
                let B = max(1, tokensPerBatch / T)
                note("bench: forward T=\(T) ×\(B), \(threads) thread(s)…")
                // Deterministic ids: [CLS] w… [SEP] with w spread over the vocabulary.
                let seqs = (0..<B).map { b in
                    [retriever.tokenizer.clsId] + (1..<(T - 1)).map { 1000 + ($0 * 7919 + b * 104_729) % (vocab - 1000) }
                        + [retriever.tokenizer.sepId]
                }
                let batch = PackedBatch(seqs)
                let t = median(measure(reps: reps) { enc.forward(batch, saveForBackward: false) })
                let gflops = forwardFlops(batch: B, length: T) / t / 1e9
                fwdTable.add(["\(threads)", "\(T)", "\(B)", fmt(t * 1000), fmt(Double(B) / t), fmt(Double(B * T) / t, 0),
                              fmt(gflops), fmt(100 * gflops / roof.aggregate) + "%"])
                json.append(["threads": threads, "tokens": T, "batch": B, "seconds_per_batch": t,
                             "sequences_per_s": Double(B) / t, "tokens_per_s": Double(B * T) / t,
                             "gflops": gflops, "roofline_gflops": roof.aggregate,
                             "fraction_of_roofline": gflops / roof.aggregate])
            }
        }
        print("## sgemm roofline on the encoder's shapes (Y = X·Wᵀ, N = \(tokensPerBatch) tokens)")
        print("")
        print(roofTable.render())
        print("")
        print("## Encoder forward (inference, packed batches of \(tokensPerBatch) tokens, analytic FLOPs)")
        print("")
        print(fwdTable.render())
        return json
    }
}
