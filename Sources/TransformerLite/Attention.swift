import CKernels
import Foundation

/// Where one sequence sits in a packed batch: rows `start ..< start + length` of every (n, ·)
/// activation.
public struct SequenceSpan: Sendable, Equatable {
    public let start: Int
    public let length: Int
}

/// Multi-head scaled dot-product self-attention over packed sequences (Vaswani et al. 2017 §3.2).
///
/// `qkv` (n, 3C) holds, per token, the query, key and value projections side by side; head h
/// uses columns `h·d ..< (h+1)·d` of each part (d = C/H). Each sequence attends only to its own
/// tokens, which is exactly what a key-padding mask achieves on a padded batch — without computing
/// the padded rows at all. Per sequence and head:
///   S = Q_h·K_hᵀ / √d (T, T),  P = softmax_row(S),  ctx_h = P·V_h (T, d).
///
/// P is never stored: the backward recomputes it (one extra T×T×d product per head), so memory
/// does not grow with T². The (sequence, head) pairs are shared among `Parallel.workers` threads,
/// each running single-threaded BLAS in its own slice of `scratch`.
public enum Attention {
    /// Scratch floats `forward` (1 matrix) and `backward` (2 matrices) need per worker, for
    /// sequences up to `maxLength` tokens.
    public static func scratchCount(maxLength: Int) -> Int { max(1, Parallel.workers) * 2 * maxLength * maxLength }

    /// - Parameters:
    ///   - ctx: (n, C) attention output before the output projection (overwritten).
    ///   - qkv: (n, 3C).
    ///   - scratch: at least `scratchCount(maxLength:)` floats.
    public static func forward(
        ctx: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
        spans: [SequenceSpan], dim C: Int, heads H: Int, scratch: UnsafeMutableBufferPointer<Float>
    ) {
        let maxT = spans.map(\.length).max() ?? 0
        precondition(scratch.count >= scratchCount(maxLength: maxT), "Attention.forward: scratch too small")
        Parallel.balanced(costs: workCosts(spans, heads: H)) { worker, items in
            let p = scratch.baseAddress! + worker * 2 * maxT * maxT
            for item in items {
                let span = spans[item / H], h = item % H
                probabilities(p, qkv: qkv, span: span, head: h, dim: C, heads: H)
                // ctx_h = P · V_h  (T×T · T×d), written into columns h·d..<(h+1)·d of ctx.
                let T = span.length, d = C / H
                BLAS.gemm(transA: false, transB: false, m: T, n: d, k: T,
                          a: p, lda: T, b: qkv + span.start * 3 * C + 2 * C + h * d, ldb: 3 * C,
                          beta: 0, c: ctx + span.start * C + h * d, ldc: C)
            }
        }
    }

    /// Backward, accumulating into `dqkv` (n, 3C); also writes the recomputed forward output into
    /// `ctx` (n, C), which the output projection's weight gradient needs.
    ///
    /// With G = dctx_h:  dP = G·V_hᵀ,  dV_h += Pᵀ·G,
    ///   dS = P ⊙ (dP − rowsum(dP ⊙ P))           (softmax backward),
    ///   dQ_h += (dS·K_h)/√d,  dK_h += (dSᵀ·Q_h)/√d.
    public static func backward(
        dqkv: UnsafeMutablePointer<Float>, ctx: UnsafeMutablePointer<Float>,
        dctx: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
        spans: [SequenceSpan], dim C: Int, heads H: Int, scratch: UnsafeMutableBufferPointer<Float>
    ) {
        let d = C / H
        let scale = 1 / Float(d).squareRoot()
        let maxT = spans.map(\.length).max() ?? 0
        precondition(scratch.count >= scratchCount(maxLength: maxT), "Attention.backward: scratch too small")
        Parallel.balanced(costs: workCosts(spans, heads: H)) { worker, items in
            let p = scratch.baseAddress! + worker * 2 * maxT * maxT
            let dp = p + maxT * maxT
            for item in items {
                let span = spans[item / H], h = item % H
                let T = span.length
                let base = qkv + span.start * 3 * C
                let dbase = dqkv + span.start * 3 * C
                let g = dctx + span.start * C
                probabilities(p, qkv: qkv, span: span, head: h, dim: C, heads: H)
                // Recomputed forward output: ctx_h = P · V_h.
                BLAS.gemm(transA: false, transB: false, m: T, n: d, k: T,
                          a: p, lda: T, b: base + 2 * C + h * d, ldb: 3 * C,
                          beta: 0, c: ctx + span.start * C + h * d, ldc: C)
                // dP = G · V_hᵀ
                BLAS.gemm(transA: false, transB: true, m: T, n: T, k: d,
                          a: g + h * d, lda: C, b: base + 2 * C + h * d, ldb: 3 * C,
                          beta: 0, c: dp, ldc: T)
                // dV_h += Pᵀ · G
                BLAS.gemm(transA: true, transB: false, m: T, n: d, k: T,
                          a: p, lda: T, b: g + h * d, ldb: C,
                          beta: 1, c: dbase + 2 * C + h * d, ldc: 3 * C)
                softmaxBackwardRows(dp, probs: p, rows: T, cols: T)
                // dQ_h += scale · dS · K_h
                BLAS.gemm(transA: false, transB: false, m: T, n: d, k: T, alpha: scale,
                          a: dp, lda: T, b: base + C + h * d, ldb: 3 * C,
                          beta: 1, c: dbase + h * d, ldc: 3 * C)
                // dK_h += scale · dSᵀ · Q_h
                BLAS.gemm(transA: true, transB: false, m: T, n: d, k: T, alpha: scale,
                          a: dp, lda: T, b: base + h * d, ldb: 3 * C,
                          beta: 1, c: dbase + C + h * d, ldc: 3 * C)
            }
        }
    }

    /// P = softmax(Q_h K_hᵀ/√d) of one sequence and head, into `p` (T, T).
    @inline(__always)
    static func probabilities(_ p: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, span: SequenceSpan,
                              head h: Int, dim C: Int, heads H: Int) {
        let T = span.length, d = C / H
        let base = qkv + span.start * 3 * C
        BLAS.gemm(transA: false, transB: true, m: T, n: T, k: d, alpha: 1 / Float(d).squareRoot(),
                  a: base + h * d, lda: 3 * C, b: base + C + h * d, ldb: 3 * C,
                  beta: 0, c: p, ldc: T)
        softmaxRows(p, rows: T, cols: T)
    }

    /// One work item per (sequence, head), item = s·H + h, costing T².
    static func workCosts(_ spans: [SequenceSpan], heads H: Int) -> [Int] {
        var costs: [Int] = []
        costs.reserveCapacity(spans.count * H)
        for s in spans { for _ in 0..<H { costs.append(s.length * s.length) } }
        return costs
    }

    /// Softmax backward of each row, in place: dS = P ⊙ (dP − Σ_j dP_j P_j).
    public static func softmaxBackwardRows(_ d: UnsafeMutablePointer<Float>, probs p: UnsafePointer<Float>,
                                           rows: Int, cols: Int) {
        gni_softmax_backward_rows(d, p, rows, cols)
    }

    /// Numerically stable softmax of each row of a (rows, cols) matrix, in place (the C kernel
    /// of `CKernels`: max, e^(x − max) by a Cephes polynomial, then the row's sum).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        gni_softmax_rows(x, rows, cols)
    }
}
