/// A fully connected layer in the package's one matmul convention (STYLE.md §4): weights stored
/// (out, in), `Y = X·Wᵀ + b`; backward `dX += dY·W`, `dW += dYᵀ·X`, `db += Σ_rows dY`.
///
/// The work is split over `Parallel.workers`, each running single-threaded sgemm on its share:
/// forward and dX by rows of X, dW and db by rows of W (output features), so no two workers
/// write the same memory and results do not depend on the split.
public enum Linear {
    /// `y (n, out) = x (n, in) · Wᵀ + b`. Overwrites y; `bias` may be nil.
    public static func forward(
        y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        rows n: Int, inDim: Int, outDim: Int
    ) {
        Parallel.chunks(n, minPerChunk: 32) { r in
            let yr = y + r.lowerBound * outDim
            var beta: Float = 0
            if let bias {
                // Broadcast the bias into every row, then accumulate the product on top (beta = 1).
                for i in 0..<r.count { (yr + i * outDim).update(from: bias, count: outDim) }
                beta = 1
            }
            BLAS.gemm(transA: false, transB: true, m: r.count, n: outDim, k: inDim,
                      a: x + r.lowerBound * inDim, lda: inDim, b: weight, ldb: inDim,
                      beta: beta, c: yr, ldc: outDim)
        }
    }

    /// Accumulating backward. Any of `dX`, `dW`, `dB` may be nil to skip it.
    public static func backward(
        dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?,
        dY: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        rows n: Int, inDim: Int, outDim: Int
    ) {
        if let dX {
            // dX[r] += dY[r] · W   (rows of the batch are independent)
            Parallel.chunks(n, minPerChunk: 32) { r in
                BLAS.gemm(transA: false, transB: false, m: r.count, n: inDim, k: outDim,
                          a: dY + r.lowerBound * outDim, lda: outDim, b: weight, ldb: inDim,
                          beta: 1, c: dX + r.lowerBound * inDim, ldc: inDim)
            }
        }
        if dW == nil && dB == nil { return }
        // dW[o] += Σ_r dY[r, o] · x[r],  dB[o] += Σ_r dY[r, o]   (output features are independent)
        Parallel.chunks(outDim, minPerChunk: 16) { o in
            if let dW {
                BLAS.gemm(transA: true, transB: false, m: o.count, n: inDim, k: n,
                          a: dY + o.lowerBound, lda: outDim, b: x, ldb: inDim,
                          beta: 1, c: dW + o.lowerBound * inDim, ldc: inDim)
            }
            if let dB {
                for r in 0..<n {
                    let row = dY + r * outDim
                    for j in o { dB[j] += row[j] }
                }
            }
        }
    }
}
