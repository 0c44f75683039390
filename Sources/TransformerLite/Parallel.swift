import Dispatch

/// Splits row-wise and elementwise work over the cores that BLAS is allowed to use.
///
/// `workers` follows `BLAS.setThreads`. Work is split into `workers` contiguous chunks; every
/// element's arithmetic is the same whatever the split, so results do not depend on the thread
/// count.
public enum Parallel {
    /// Engine workers; starts at OpenBLAS's default core count, with OpenBLAS itself set to one thread.
    nonisolated(unsafe) static var workers: Int = {
        let n = BLAS.defaultThreads
        BLAS.setLibraryThreads(1)
        return max(1, n)
    }()

    /// Calls `body` on ≤ `workers` disjoint contiguous sub-ranges covering `0..<count`, in parallel.
    /// Runs inline when there is one worker or less than `minPerChunk` work per chunk.
    @inline(__always)
    static func chunks(_ count: Int, minPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let w = min(workers, max(1, count / max(1, minPerChunk)))
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
        let w = min(workers, costs.count)
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
