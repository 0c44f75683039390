import Foundation
import XCTest
@testable import GradNormIR
import TestSupport
import TransformerLite

/// Exact inner-product search against a brute-force Float64 reference, across gemm block
/// boundaries, with exclusions, ties and every k from 1 to beyond the index size.
final class VectorIndexTests: XCTestCase {
    /// `n` seeded random L2-normalised vectors of `dim` components.
    private func randomUnitVectors(_ n: Int, dim: Int, rng: inout TestRNG) -> [[Float]] {
        (0..<n).map { _ in Ref.l2normalize(rng.array(dim)).floats }
    }

    /// Brute-force top-k in Float64: all allowed rows sorted by (score ↓, index ↑).
    private func reference(_ queries: [[Float]], _ vectors: [[Float]], k: Int,
                           excluding: [Set<Int>]? = nil) -> [[(index: Int, score: Double)]] {
        queries.enumerated().map { q, query in
            var all: [(index: Int, score: Double)] = []
            for (i, v) in vectors.enumerated() where !(excluding?[q].contains(i) ?? false) {
                var s = 0.0
                for j in query.indices { s += Double(query[j]) * Double(v[j]) }
                all.append((i, s))
            }
            all.sort { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
            return Array(all.prefix(k))
        }
    }

    /// Same length; scores in order and within `tol` of the reference, each returned score within
    /// `tol` of its row's true score; rows equal wherever the reference has no near-tie.
    private func assertMatches(_ got: [[Hit]], _ want: [[(index: Int, score: Double)]],
                               queries: [[Float]], vectors: [[Float]], tol: Double = 1e-5,
                               _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, label, file: file, line: line)
        for (q, (g, w)) in zip(got, want).enumerated() {
            XCTAssertEqual(g.count, w.count, "\(label) q\(q): hit count", file: file, line: line)
            guard g.count == w.count else { continue }
            for i in g.indices {
                if i > 0 {
                    XCTAssertTrue(VectorIndex.ranksBefore(g[i - 1], g[i]), "\(label) q\(q): order at \(i)",
                                  file: file, line: line)
                }
                XCTAssertEqual(Double(g[i].score), w[i].score, accuracy: tol, "\(label) q\(q) rank \(i)",
                               file: file, line: line)
                var s = 0.0
                for j in queries[q].indices { s += Double(queries[q][j]) * Double(vectors[g[i].index][j]) }
                XCTAssertEqual(Double(g[i].score), s, accuracy: tol, "\(label) q\(q): score of row \(g[i].index)",
                               file: file, line: line)
                let gapBefore = i > 0 ? w[i - 1].score - w[i].score : .infinity
                let gapAfter = i + 1 < w.count ? w[i].score - w[i + 1].score : .infinity
                if min(gapBefore, gapAfter) > 10 * tol {
                    XCTAssertEqual(g[i].index, w[i].index, "\(label) q\(q) rank \(i)", file: file, line: line)
                }
            }
        }
    }

    /// The same rows in the same order, scores equal within `tol`: one query searched in two
    /// different calls.
    private func assertSameHits(_ a: [Hit], _ b: [Hit], tol: Float = 1e-6, _ label: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.map(\.index), b.map(\.index), label, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x.score, y.score, accuracy: tol, label, file: file, line: line) }
    }

    func testMatchesFloat64ReferenceAcrossBlocksAndK() {
        var rng = TestRNG(seed: 42)
        let dim = 24
        let vectors = randomUnitVectors(53, dim: dim, rng: &rng)
        let queries = randomUnitVectors(29, dim: dim, rng: &rng)
        // (query block, vector block): one block, several uneven blocks, single-row blocks.
        for (bq, bv) in [(256, 4096), (7, 10), (1, 1), (29, 53), (30, 52)] {
            let index = VectorIndex(dimension: dim, vectors: vectors, blockQueries: bq, blockVectors: bv)
            XCTAssertEqual(index.count, 53)
            for k in [1, 2, 10, 52, 53, 54, 1000] {
                assertMatches(index.search(queries, k: k), reference(queries, vectors, k: k),
                              queries: queries, vectors: vectors, "blocks (\(bq), \(bv)) k \(k)")
            }
        }
    }

    func testExclusionSets() {
        var rng = TestRNG(seed: 7)
        let dim = 16
        let vectors = randomUnitVectors(40, dim: dim, rng: &rng)
        let queries = randomUnitVectors(12, dim: dim, rng: &rng)
        var sets: [Set<Int>] = (0..<queries.count).map { q in
            Set((0..<(q * 3)).map { _ in rng.int(vectors.count) })
        }
        sets[1] = [-5, 40, 1000]       // out-of-range indices are ignored
        sets[2] = Set(0..<40)          // everything excluded
        sets[3] = Set(0..<39)          // one row left
        let index = VectorIndex(dimension: dim, vectors: vectors, blockQueries: 5, blockVectors: 9)
        for k in [1, 4, 39, 40, 60] {
            let got = index.search(queries, k: k, excluding: sets)
            assertMatches(got, reference(queries, vectors, k: k, excluding: sets),
                          queries: queries, vectors: vectors, "k \(k)")
            for (q, hits) in got.enumerated() {
                XCTAssertTrue(hits.allSatisfy { !sets[q].contains($0.index) }, "k \(k) q\(q) returned an excluded row")
            }
            XCTAssertEqual(got[2], [])
            XCTAssertEqual(got[3].map(\.index), [39])
        }
        // A query searched alone finds the same rows (its scores may differ in the last bit: the
        // product has other shapes, and some BLAS kernels round a row by its place in the product).
        assertSameHits(index.search([queries[5]], k: 6, excluding: [sets[5]])[0], index.search(queries, k: 6, excluding: sets)[5],
                       "one query alone")
    }

    func testSelfNeighboursExcludeOnlyThemselves() {
        var rng = TestRNG(seed: 3)
        let dim = 12
        var vectors = randomUnitVectors(30, dim: dim, rng: &rng)
        vectors[17] = vectors[4]  // an identical copy must stay a neighbour of row 4
        let index = VectorIndex(dimension: dim, vectors: vectors, blockQueries: 4, blockVectors: 8)
        let rows = [4, 0, 29, 17, 4]
        for k in [1, 5, 29, 30, 31] {
            let got = index.search(selfNeighboursOf: rows, k: k)
            let want = reference(rows.map { vectors[$0] }, vectors, k: k, excluding: rows.map { [$0] })
            assertMatches(got, want, queries: rows.map { vectors[$0] }, vectors: vectors, "k \(k)")
            assertSameHits(got[0], got[4], "same row, same neighbours, k \(k)")
            for (q, hits) in got.enumerated() {
                XCTAssertEqual(hits.count, min(k, 29))
                XCTAssertFalse(hits.contains { $0.index == rows[q] }, "row \(rows[q]) returned itself")
            }
            XCTAssertEqual(got[0].first?.index, 17, "the copy of row 4 is its nearest neighbour")
            XCTAssertEqual(got[3].first?.index, 4)
        }
    }

    func testTiesOrderedBySmallerIndex() {
        // Components in {−1, 0, 1}/2: every inner product is exact in Float32 whatever the
        // summation order, so equal vectors give exactly equal scores in every gemm block.
        var rng = TestRNG(seed: 11)
        let dim = 8
        let base: [[Float]] = (0..<5).map { _ in (0..<dim).map { _ in Float(rng.int(3) - 1) / 2 } }
        // 26 rows, each one of 5 patterns, so every score is shared by several rows across blocks.
        let vectors = (0..<26).map { base[($0 * 7) % 5] }
        let queries = base + [[Float](repeating: 0, count: dim)]  // the zero query ties every row
        for (bq, bv) in [(256, 4096), (2, 3), (1, 1)] {
            let index = VectorIndex(dimension: dim, vectors: vectors, blockQueries: bq, blockVectors: bv)
            for k in [1, 3, 6, 13, 26, 40] {
                let got = index.search(queries, k: k)
                let want = reference(queries, vectors, k: k)
                for q in queries.indices {
                    XCTAssertEqual(got[q].map(\.index), want[q].map(\.index), "blocks (\(bq), \(bv)) k \(k) q\(q)")
                    XCTAssertEqual(got[q].map { Double($0.score) }, want[q].map(\.score))
                }
            }
            XCTAssertEqual(index.search(queries, k: 4)[5].map(\.index), [0, 1, 2, 3])
        }
    }

    func testSameResultsOnOneAndTwoThreads() {
        var rng = TestRNG(seed: 5)
        let dim = 32
        let vectors = randomUnitVectors(300, dim: dim, rng: &rng)
        let queries = randomUnitVectors(45, dim: dim, rng: &rng)
        let saved = BLAS.engineThreads
        defer { BLAS.setThreads(saved) }
        var results: [[[Hit]]] = []
        for threads in [1, 2] {
            BLAS.setThreads(threads)
            // 1 query (split over vector groups) and 45 queries (split over query blocks).
            let index = VectorIndex(dimension: dim, vectors: vectors, blockQueries: 8, blockVectors: 64)
            results.append(index.search(queries, k: 20) + index.search([queries[0]], k: 20)
                           + index.search(selfNeighboursOf: Array(0..<300), k: 7))
        }
        XCTAssertEqual(results[0], results[1])
        assertMatches(Array(results[0][0..<45]), reference(queries, vectors, k: 20),
                      queries: queries, vectors: vectors, "threads")
    }

    func testEdgeCases() {
        let empty = VectorIndex(dimension: 3, vectors: [])
        XCTAssertEqual(empty.count, 0)
        XCTAssertEqual(empty.search([[1, 0, 0], [0, 1, 0]], k: 5), [[], []])
        let index = VectorIndex(dimension: 3, vectors: [[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0]])
        XCTAssertEqual(index.search([[Float]](), k: 2), [])
        XCTAssertEqual(index.search([[1, 0, 0]], k: 0), [[]])
        XCTAssertEqual(index.vector(2), [0.6, 0.8, 0])
        XCTAssertEqual(index.search([[1, 0, 0]], k: 5)[0],
                       [Hit(index: 0, score: 1), Hit(index: 2, score: 0.6), Hit(index: 1, score: 0)])
        // NaN ranks last and is reported as −∞.
        let withNaN = VectorIndex(dimension: 2, vectors: [[.nan, 0], [1, 0], [0, 1]])
        XCTAssertEqual(withNaN.search([[1, 0]], k: 3)[0],
                       [Hit(index: 1, score: 1), Hit(index: 2, score: 0), Hit(index: 0, score: -.infinity)])
        XCTAssertEqual(withNaN.search([[1, 0]], k: 2)[0], [Hit(index: 1, score: 1), Hit(index: 2, score: 0)])
    }
}
