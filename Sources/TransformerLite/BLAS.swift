import CShims

/// The only place in the package that calls BLAS or LAPACK.
///
/// Convention (STYLE.md §4): weights are stored (out, in) row-major and a linear layer is
/// `Y = X·Wᵀ + b`; its backward is `dX += dY·W` and `dW += dYᵀ·X`. Every call converts `Int`
/// to `Int32` and checks leading dimensions with `precondition` (programmer errors).
public enum BLAS {
    /// Sets how many cores the engine uses (process-wide). The engine splits its own work over
    /// `n` workers, each calling single-threaded OpenBLAS, so OpenBLAS's own thread pool is set to
    /// one thread: its idle workers would otherwise spin on the cores the engine's workers need.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1")
        openblas_set_num_threads(1)
        Parallel.workers = n
    }

    /// The number of cores the engine uses (see `setThreads`).
    public static var engineThreads: Int { Parallel.workers }

    /// Sets only OpenBLAS's own thread count, for measuring OpenBLAS itself (the roofline).
    /// Call `setThreads` again before running the engine.
    public static func setLibraryThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be >= 1")
        openblas_set_num_threads(Int32(n))
    }

    /// The number of cores OpenBLAS would use by default on this machine (before any setting).
    static let defaultThreads: Int = Int(openblas_get_num_threads())

    /// The kernel family OpenBLAS selected for this CPU (e.g. "Cooperlake"), for reports.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The OpenBLAS build configuration string, for reports.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }

    /// General row-major single-precision product:
    /// `C (m×n, ldc) = alpha · op(A) · op(B) + beta · C`, where `op(A)` is m×k and `op(B)` is k×n.
    /// `A` is stored m×k (lda ≥ k) when not transposed and k×m (lda ≥ m) when transposed; same for B.
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension")
        precondition(lda >= max(1, transA ? m : k), "gemm: lda \(lda) too small")
        precondition(ldb >= max(1, transB ? k : n), "gemm: ldb \(ldb) too small")
        precondition(ldc >= max(1, n), "gemm: ldc \(ldc) too small")
        precondition(m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max) && lda <= Int(Int32.max)
                     && ldb <= Int(Int32.max) && ldc <= Int(Int32.max), "gemm: dimension exceeds Int32")
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
}

// Cholesky in two steps, so that a covariance is factored once and then solved against any
// number of right-hand sides.
extension BLAS {
    /// Factors symmetric positive-definite `A` (n×n, row-major) in place as `A = L·Lᵀ` (LAPACK
    /// dpotrf, lower triangle read and overwritten by `L`; the strict upper triangle is left as
    /// is). Returns LAPACK's `info` (0 = success, > 0 = not positive definite).
    public static func choleskyFactor(a: UnsafeMutablePointer<Double>, n: Int) -> Int {
        precondition(n >= 1 && n <= Int(Int32.max), "choleskyFactor: bad n \(n)")
        return Int(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), a, Int32(n)))
    }

    /// Solves `A·X = B` with the factor `L` from `choleskyFactor` (LAPACK dpotrs). `B` is n×nrhs
    /// row-major and is overwritten by `X`. Returns LAPACK's `info` (0 = success).
    public static func choleskySolve(
        factor: UnsafePointer<Double>, n: Int, b: UnsafeMutablePointer<Double>, nrhs: Int
    ) -> Int {
        precondition(n >= 1 && nrhs >= 1 && n <= Int(Int32.max) && nrhs <= Int(Int32.max),
                     "choleskySolve: bad n \(n) or nrhs \(nrhs)")
        return Int(LAPACKE_dpotrs(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), Int32(nrhs),
                                  factor, Int32(n), b, Int32(nrhs)))
    }
}
