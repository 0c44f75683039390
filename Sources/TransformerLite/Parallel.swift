import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits row-wise and elementwise work over the cores that BLAS is allowed to use.
///
/// `workers` follows `BLAS.setThreads`. Work is split into `workers` contiguous chunks. Elementwise
/// and row-wise arithmetic is the same whatever the split; the matrix products' last bits can
/// depend on it (an sgemm kernel may round a row differently with the number of rows it is given),
/// so results are deterministic for a given worker count, and equal across counts only to rounding.
public enum Parallel {
    /// Engine workers; starts at OpenBLAS's default core count, with OpenBLAS itself set to one thread.
    nonisolated(unsafe) static var workers: Int = {
        let n = BLAS.defaultThreads
        BLAS.setLibraryThreads(1)
        return max(1, n)
    }()

    /// Marks a thread that runs `alone`: its splits use one worker.
    private static let aloneKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "Parallel: no thread-specific key left")
        return key
    }()

    /// The workers the calling thread may use: 1 inside `alone`, else `workers`.
    public static var available: Int { pthread_getspecific(aloneKey) == nil ? workers : 1 }

    /// Runs `body` with every split on the calling thread (one worker; single-threaded products),
    /// so that several independent jobs — e.g. whole documents — can run side by side, one per
    /// core, instead of each splitting its products over all cores.
    public static func alone<R>(_ body: () throws -> R) rethrows -> R {
        let outer = pthread_getspecific(aloneKey)
        pthread_setspecific(aloneKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(aloneKey, outer) }
        return try body()
    }

    /// Calls `body` on ≤ `workers` disjoint contiguous sub-ranges covering `0..<count`, in parallel.
    /// Runs inline when there is one worker or less than `minPerChunk` work per chunk.
    @inline(__always)
    static func chunks(_ count: Int, minPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let w = min(available, max(1, count / max(1, minPerChunk)))
        if w <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: w) { i in
            let lo = count * i / w, hi = count * (i + 1) / w
            if hi > lo { body(lo..<hi) }
        }
    }

    /// Runs `body(worker, items)` for each worker with a balanced share of `costs.count` items
    /// (longest-processing-time-first greedy assignment, deterministic). Each worker's BLAS calls
    /// run single-threaded on its own core.
    static func balanced(costs: [Int], _ body: (_ worker: Int, _ items: [Int]) -> Void) {
        let w = min(available, costs.count)
        if w <= 1 {
            if !costs.isEmpty { body(0, Array(costs.indices)) }
            return
        }
        var load = [Int](repeating: 0, count: w)
        var share = [[Int]](repeating: [], count: w)
        for i in costs.indices.sorted(by: { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }) {
            let k = load.indices.min { load[$0] < load[$1] }!
            share[k].append(i)
            load[k] += costs[i]
        }
        DispatchQueue.concurrentPerform(iterations: w) { k in body(k, share[k].sorted()) }
    }
}
