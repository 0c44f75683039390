import Dispatch
import TransformerLite

/// One search result: a row of the index and its inner product with the query.
public struct Hit: Sendable, Equatable {
    /// Row of the index (0-based, the order the vectors were given in).
    public let index: Int
    /// Inner product query · vector (cosine when both are L2-normalised).
    public let score: Float

    public init(index: Int, score: Float) {
        self.index = index
        self.score = score
    }
}

/// Exact inner-product search over a fixed set of vectors (METHOD.md, "Per-document score",
/// step 1: the index of normally embedded, L2-normalised documents).
///
/// The vectors live in one row-major FlatBuffer V (count, dim). A search computes the scores of a
/// block of queries against a block of vectors with one `BLAS.gemm` (S = Q·Vᵀ, (bq, bv)), then
/// keeps each query's best k in a fixed-size min-heap (no sort of all scores), and finally sorts
/// the k. Results are ordered by descending score, ties by smaller index.
///
/// Determinism: the gemm shapes depend only on the number of queries, `count`, and the block sizes
/// — never on k or the thread count — and the order (score ↓, index ↑) is total, so the same
/// inputs give bit-identical results on 1 or 2 threads. The same query searched in another call
/// (alone, or among other queries) can get scores that differ in the last bit: some BLAS kernels
/// (OpenBLAS's Haswell and Zen sgemm) round a row by the number of rows in the product and its
/// place among them. A NaN score (NaN in a vector) ranks below
/// every number and is reported as −∞.
public final class VectorIndex: Sendable {
    /// Components per vector.
    public let dimension: Int
    /// Number of vectors.
    public let count: Int
    /// The vectors, row-major (count, dimension).
    let storage: FlatBuffer
    /// Queries per gemm block.
    let blockQueries: Int
    /// Vectors per gemm block.
    let blockVectors: Int

    /// Copies `vectors` (each of `dimension` components; expected L2-normalised, not required).
    public convenience init(dimension: Int, vectors: [[Float]]) {
        self.init(dimension: dimension, vectors: vectors, blockQueries: 256, blockVectors: 4096)
    }

    /// As above with explicit block sizes (a (blockQueries, blockVectors) score block per gemm);
    /// tests shrink them to cross block boundaries.
    init(dimension: Int, vectors: [[Float]], blockQueries: Int, blockVectors: Int) {
        precondition(dimension >= 1, "VectorIndex: dimension must be >= 1")
        precondition(blockQueries >= 1 && blockVectors >= 1, "VectorIndex: block sizes must be >= 1")
        self.dimension = dimension
        self.count = vectors.count
        self.blockQueries = blockQueries
        self.blockVectors = blockVectors
        storage = FlatBuffer(count: vectors.count * dimension)  // (count, dim)
        storage.withUnsafeMutableBufferPointer { dst in
            for (i, v) in vectors.enumerated() {
                precondition(v.count == dimension,
                             "VectorIndex: vector \(i) has \(v.count) components, expected \(dimension)")
                for j in 0..<dimension { dst[i * dimension + j] = v[j] }
            }
        }
    }

    /// A copy of vector `i`.
    public func vector(_ i: Int) -> [Float] {
        precondition(i >= 0 && i < count, "VectorIndex: index \(i) out of range 0..<\(count)")
        return storage.toArray(i * dimension..<(i + 1) * dimension)
    }

    /// The top-k rows for each query by inner product, best first (ties: smaller index first).
    /// `excluding[q]`, when given (one set per query), lists rows that query must not return;
    /// indices outside the index are ignored. Each list has min(k, count − excluded) hits.
    public func search(_ queries: [[Float]], k: Int, excluding: [Set<Int>]? = nil) -> [[Hit]] {
        if let excluding {
            precondition(excluding.count == queries.count,
                         "VectorIndex.search: \(excluding.count) exclusion sets for \(queries.count) queries")
        }
        var packed = [Float](repeating: 0, count: queries.count * dimension)  // (nq, dim)
        for (q, v) in queries.enumerated() {
            precondition(v.count == dimension,
                         "VectorIndex.search: query \(q) has \(v.count) components, expected \(dimension)")
            for j in 0..<dimension { packed[q * dimension + j] = v[j] }
        }
        return packed.withUnsafeBufferPointer {
            search(packed: $0, queryCount: queries.count, k: k, excludingSets: excluding, excludingSelf: nil)
        }
    }

    /// N(x) of METHOD.md for each x in `indices`: the top-k neighbours of vector x, x itself
    /// excluded (an identical copy of x at another row is kept).
    public func search(selfNeighboursOf indices: [Int], k: Int) -> [[Hit]] {
        var packed = [Float](repeating: 0, count: indices.count * dimension)  // (nq, dim)
        storage.withUnsafeBufferPointer { v in
            for (q, i) in indices.enumerated() {
                precondition(i >= 0 && i < count, "VectorIndex: index \(i) out of range 0..<\(count)")
                for j in 0..<dimension { packed[q * dimension + j] = v[i * dimension + j] }
            }
        }
        return packed.withUnsafeBufferPointer {
            search(packed: $0, queryCount: indices.count, k: k, excludingSets: nil, excludingSelf: indices)
        }
    }

    // MARK: Blocked search

    /// Core search over packed queries (nq, dim). Work is a grid of tasks (query block × group of
    /// vector blocks); each task keeps its own heaps and the groups of a query are merged at the
    /// end. Several groups are used only when there are too few query blocks to keep every worker
    /// busy (e.g. a single query against a large index).
    func search(packed queries: UnsafeBufferPointer<Float>, queryCount nq: Int, k: Int,
                excludingSets: [Set<Int>]?, excludingSelf: [Int]?) -> [[Hit]] {
        precondition(k >= 0, "VectorIndex.search: k must be >= 0")
        precondition(queries.count == nq * dimension)
        if nq == 0 { return [] }
        let kk = min(k, count)
        if kk == 0 { return [[Hit]](repeating: [], count: nq) }

        let dim = dimension
        let bq = blockQueries, bv = blockVectors
        let qBlocks = (nq + bq - 1) / bq
        let vBlocks = (count + bv - 1) / bv
        let workers = max(1, Parallel.available)
        let groups = qBlocks >= 2 * workers ? 1 : min(vBlocks, (2 * workers + qBlocks - 1) / qBlocks)
        let tasks = qBlocks * groups
        let threads = min(workers, tasks)

        // partial[t][r]: best ≤ kk hits of query (qb·bq + r) over task t's vector blocks, best first.
        var partial = [[[Hit]]](repeating: [], count: tasks)
        storage.withUnsafeBufferPointer { vectors in
            partial.withUnsafeMutableBufferPointer { buffer in
                let out = buffer  // each task writes only its own slot
                DispatchQueue.concurrentPerform(iterations: threads) { worker in
                    // Per-worker scratch, reused over its tasks.
                    let scores = UnsafeMutablePointer<Float>.allocate(capacity: bq * bv)   // (bq, bv)
                    let heapScore = UnsafeMutablePointer<Float>.allocate(capacity: bq * kk)  // (bq, kk)
                    let heapIndex = UnsafeMutablePointer<Int>.allocate(capacity: bq * kk)    // (bq, kk)
                    var heapCount = [Int](repeating: 0, count: bq)
                    defer {
                        scores.deallocate()
                        heapScore.deallocate()
                        heapIndex.deallocate()
                    }
                    for t in stride(from: worker, to: tasks, by: threads) {
                        let qb = t / groups, g = t % groups
                        let q0 = qb * bq, qn = min(bq, nq - q0)
                        for r in 0..<qn { heapCount[r] = 0 }
                        for vb in (vBlocks * g / groups)..<(vBlocks * (g + 1) / groups) {
                            let v0 = vb * bv, vn = min(bv, count - v0)
                            // S (qn, vn) = Q[q0 ..< q0+qn] (qn, dim) · V[v0 ..< v0+vn]ᵀ (dim, vn)
                            BLAS.gemm(transA: false, transB: true, m: qn, n: vn, k: dim,
                                      a: queries.baseAddress! + q0 * dim, lda: dim,
                                      b: vectors.baseAddress! + v0 * dim, ldb: dim,
                                      c: scores, ldc: vn)
                            for r in 0..<qn {
                                let q = q0 + r
                                var excluded = excludingSets?[q]
                                if excluded?.isEmpty == true { excluded = nil }
                                heapCount[r] = Self.select(
                                    scores: scores + r * vn, count: vn, firstIndex: v0,
                                    heapScore: heapScore + r * kk, heapIndex: heapIndex + r * kk,
                                    heapCount: heapCount[r], capacity: kk,
                                    excludedSet: excluded, excludedIndex: excludingSelf?[q] ?? -1)
                            }
                        }
                        var lists: [[Hit]] = []
                        lists.reserveCapacity(qn)
                        for r in 0..<qn {
                            var hits: [Hit] = []
                            hits.reserveCapacity(heapCount[r])
                            for h in 0..<heapCount[r] {
                                hits.append(Hit(index: heapIndex[r * kk + h], score: heapScore[r * kk + h]))
                            }
                            hits.sort(by: Self.ranksBefore)
                            lists.append(hits)
                        }
                        out[t] = lists
                    }
                }
            }
        }

        var result: [[Hit]] = []
        result.reserveCapacity(nq)
        for qb in 0..<qBlocks {
            for r in 0..<min(bq, nq - qb * bq) {
                if groups == 1 {
                    result.append(partial[qb][r])
                } else {
                    var all: [Hit] = []
                    for g in 0..<groups { all += partial[qb * groups + g][r] }
                    all.sort(by: Self.ranksBefore)
                    result.append(Array(all.prefix(kk)))
                }
            }
        }
        return result
    }

    /// The result order: higher score first, then smaller index.
    @inline(__always)
    static func ranksBefore(_ a: Hit, _ b: Hit) -> Bool {
        a.score > b.score || (a.score == b.score && a.index < b.index)
    }

    /// Heap order: (sa, ia) is worse than (sb, ib). The heap keeps its worst entry at the root.
    @inline(__always)
    static func worse(_ sa: Float, _ ia: Int, _ sb: Float, _ ib: Int) -> Bool {
        sa < sb || (sa == sb && ia > ib)
    }

    /// Offers scores[j] (row firstIndex + j) for j in 0..<count to one query's heap of
    /// `capacity` entries holding `heapCount`; returns the new count. Candidates arrive in
    /// increasing index, so once the heap is full a candidate enters only if its score is strictly
    /// greater than the root's (an equal score has a larger index, so it ranks after the root).
    @inline(__always)
    static func select(scores: UnsafePointer<Float>, count: Int, firstIndex: Int,
                       heapScore hs: UnsafeMutablePointer<Float>, heapIndex hi: UnsafeMutablePointer<Int>,
                       heapCount: Int, capacity: Int,
                       excludedSet: Set<Int>?, excludedIndex: Int) -> Int {
        var n = heapCount
        var j = 0
        // Filling: every allowed candidate enters (sift up).
        while n < capacity && j < count {
            let index = firstIndex + j
            if index != excludedIndex && !(excludedSet?.contains(index) ?? false) {
                let s = scores[j].isNaN ? -Float.infinity : scores[j]
                var c = n
                n += 1
                while c > 0 {
                    let p = (c - 1) / 2
                    guard worse(s, index, hs[p], hi[p]) else { break }
                    hs[c] = hs[p]; hi[c] = hi[p]
                    c = p
                }
                hs[c] = s; hi[c] = index
            }
            j += 1
        }
        guard n == capacity else { return n }
        // Full: replace the root by a better candidate (sift down). NaN > root is false.
        var root = hs[0]
        while j < count {
            let s = scores[j]
            if s > root {
                let index = firstIndex + j
                if index != excludedIndex && !(excludedSet?.contains(index) ?? false) {
                    var c = 0
                    while true {
                        let l = 2 * c + 1
                        if l >= n { break }
                        var w = l
                        let r = l + 1
                        if r < n && worse(hs[r], hi[r], hs[l], hi[l]) { w = r }
                        guard worse(hs[w], hi[w], s, index) else { break }
                        hs[c] = hs[w]; hi[c] = hi[w]
                        c = w
                    }
                    hs[c] = s; hi[c] = index
                    root = hs[0]
                }
            }
            j += 1
        }
        return n
    }
}
