import Foundation
import XCTest
@testable import GradNormIR
import TestSupport
import TransformerLite

/// Metrics against naive Float64 references (all-pairs AUROC, textbook Spearman, hand-computed
/// quantiles and DRR) and the embedding-distance detectors against explicit-loop references
/// (kNN by loops, Mahalanobis by a Gauss–Jordan inverse), plus every input error.
final class BaselineMetricTests: XCTestCase {
    // MARK: - Helpers

    /// n random L2-normalised vectors of dimension d, in Float (the detectors' input type).
    private func unitVectors(_ n: Int, _ d: Int, _ rng: inout TestRNG) -> [[Float]] {
        (0..<n).map { _ in Ref.l2normalize(rng.array(d)).floats }
    }

    private func assertInvalidInput(_ mention: String, file: StaticString = #filePath, line: UInt = #line,
                                    _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case GradNormIRError.invalidInput(let msg) = error else {
                return XCTFail("expected invalidInput, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(msg.contains(mention), "message '\(msg)' does not mention '\(mention)'", file: file, line: line)
        }
    }

    // MARK: - AUROC

    func testAUROCMatchesAllPairsWithTies() {
        var rng = TestRNG(seed: 1)
        for n in [2, 7, 150] {
            // Scores rounded to one decimal so many ties occur.
            let scores = (0..<n).map { _ in (rng.uniform(1) * 10).rounded() / 10 }
            var labels = (0..<n).map { _ in rng.int(3) == 0 }
            labels[0] = true; labels[n - 1] = false
            let got = Metrics.auroc(scores: scores, positives: labels)
            let want = RefMetrics.aurocAllPairs(scores, labels)
            XCTAssertNotNil(got)
            XCTAssertEqual(got!, want!, accuracy: 1e-12, "n = \(n)")
        }
    }

    func testAUROCEdgeCases() {
        XCTAssertEqual(Metrics.auroc(scores: [3, 4, 1, 2], positives: [true, true, false, false]), 1)
        XCTAssertEqual(Metrics.auroc(scores: [1, 2, 3, 4], positives: [true, true, false, false]), 0)
        XCTAssertEqual(Metrics.auroc(scores: [5, 5, 5], positives: [true, false, false]), 0.5)
        XCTAssertNil(Metrics.auroc(scores: [1, 2], positives: [true, true]))
        XCTAssertNil(Metrics.auroc(scores: [1, 2], positives: [false, false]))
        XCTAssertNil(Metrics.auroc(scores: [], positives: []))
        XCTAssertNil(Metrics.auroc(scores: [1, .nan], positives: [true, false]))
    }

    // MARK: - Spearman

    func testSpearmanMatchesTextbookWithoutTies() {
        var rng = TestRNG(seed: 2)
        let x = rng.array(40), y = x.map { $0 + rng.uniform(0.7) }
        XCTAssertEqual(Metrics.spearman(x, y)!, RefMetrics.spearmanNoTies(x, y), accuracy: 1e-12)
        XCTAssertEqual(Metrics.spearman(x, x.map { $0 * $0 * $0 })!, 1, accuracy: 1e-12)
        XCTAssertEqual(Metrics.spearman(x, x.map { -$0 })!, -1, accuracy: 1e-12)
    }

    func testSpearmanWithTiesIsPearsonOfAverageRanks() {
        var rng = TestRNG(seed: 3)
        let x = (0..<50).map { _ in Double(rng.int(6)) }
        let y = (0..<50).map { i in x[i] + Double(rng.int(4)) }
        let want = RefMetrics.pearson(RefMetrics.ranksByCounting(x), RefMetrics.ranksByCounting(y))
        XCTAssertEqual(Metrics.spearman(x, y)!, want, accuracy: 1e-12)
        XCTAssertEqual(Metrics.averageRanks([10, 20, 10, 30, 20, 20]), [1.5, 4, 1.5, 6, 4, 4])
        XCTAssertNil(Metrics.spearman([1, 1, 1], [1, 2, 3]))
        XCTAssertNil(Metrics.spearman([1], [2]))
        XCTAssertNil(Metrics.spearman([1, .nan], [1, 2]))
    }

    // MARK: - Mean, quantile, topK

    func testMeanAndQuantileType7() {
        XCTAssertEqual(Metrics.mean([1, 2, 3, 4]), 2.5)
        XCTAssertNil(Metrics.mean([]))
        let xs: [Double] = [4, 1, 3, 2]          // sorted: 1 2 3 4
        XCTAssertEqual(Metrics.quantile(xs, 0), 1)
        XCTAssertEqual(Metrics.quantile(xs, 1), 4)
        XCTAssertEqual(Metrics.quantile(xs, 0.5)!, 2.5, accuracy: 1e-15)   // h = 1.5
        XCTAssertEqual(Metrics.quantile(xs, 0.25)!, 1.75, accuracy: 1e-15) // h = 0.75 (R: 1.75)
        XCTAssertEqual(Metrics.quantile(xs, 0.9)!, 3.7, accuracy: 1e-15)   // h = 2.7
        XCTAssertEqual(Metrics.quantile([10, 0, 5], 0.9)!, 9, accuracy: 1e-15) // h = 1.8: 5 + 0.8·5
        XCTAssertEqual(Metrics.quantile([7], 0.3), 7)
        XCTAssertNil(Metrics.quantile([], 0.5))
        XCTAssertNil(Metrics.quantile([1, 2], 1.5))
        XCTAssertNil(Metrics.quantile([1, 2], -0.1))
        XCTAssertNil(Metrics.quantile([1, .nan], 0.5))
    }

    func testTopKTiesBySmallerIndexAndNaNLast() {
        let s: [Double] = [0.5, 0.9, 0.5, 0.9, 0.1, .nan, 0.7]
        XCTAssertEqual(Metrics.topK(scores: s, k: 3), [1, 3, 6])
        XCTAssertEqual(Metrics.topK(scores: s, k: 5), [1, 3, 6, 0, 2])
        XCTAssertEqual(Metrics.topK(scores: s, k: 100), [1, 3, 6, 0, 2, 4, 5])
        XCTAssertEqual(Metrics.topK(scores: s, k: 0), [])
        XCTAssertEqual(Metrics.topK(scores: [], k: 2), [])
    }

    // MARK: - DRR and per-document recall

    func testDRRHandExample() {
        let recall: [Double] = [1.0, 0.5, 0.0, .nan, 0.25]
        let nq = [2, 4, 1, 0, 4]
        // S = {0, 1, 2}: (1·2 + 0.5·4 + 0·1) / (2 + 4 + 1) = 4/7.
        XCTAssertEqual(Metrics.drr(flagged: [0, 1, 2], recall: recall, relevantQueryCount: nq)!, 4.0 / 7, accuracy: 1e-15)
        // Duplicates count once, a document without queries adds nothing (its NaN is ignored).
        XCTAssertEqual(Metrics.drr(flagged: [2, 0, 1, 1, 3], recall: recall, relevantQueryCount: nq)!, 4.0 / 7, accuracy: 1e-15)
        // All documents: (2 + 2 + 0 + 1) / 11.
        XCTAssertEqual(Metrics.drr(flagged: Array(0..<5), recall: recall, relevantQueryCount: nq)!, 5.0 / 11, accuracy: 1e-15)
        XCTAssertNil(Metrics.drr(flagged: [3], recall: recall, relevantQueryCount: nq))
        XCTAssertNil(Metrics.drr(flagged: [], recall: recall, relevantQueryCount: nq))
    }

    func testPerDocumentRecallHandExample() throws {
        // 3 queries over 5 documents.
        let rankings = [[0, 2, 4], [1, 0], [3, 2, 1]]
        let qrels: [Int: Set<Int>] = [0: [0, 1], 1: [1], 2: [1, 2]]
        let r = try Metrics.perDocumentRecall(rankings: rankings, qrels: qrels, documentCount: 5, k: 2)
        // doc 0: q0 (hit). doc 1: q0 (miss), q1 (hit), q2 (rank 3 > k: miss). doc 2: q2 (hit).
        XCTAssertEqual(r.relevantQueryCount, [1, 3, 1, 0, 0])
        XCTAssertEqual(r.hitCount, [1, 1, 1, 0, 0])
        XCTAssertEqual(r.recall[0], 1)
        XCTAssertEqual(r.recall[1]!, 1.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(r.recall[2], 1)
        XCTAssertNil(r.recall[3])
        // DRR over all evaluated documents: (1 + 1 + 1) / 5.
        let drr = Metrics.drr(flagged: Array(0..<5), recall: r.recall.map { $0 ?? 0 }, relevantQueryCount: r.relevantQueryCount)
        XCTAssertEqual(drr!, 3.0 / 5, accuracy: 1e-15)
        // Whole lists: doc 1 is now found by q2 too.
        let full = try Metrics.perDocumentRecall(rankings: rankings, qrels: qrels, documentCount: 5)
        XCTAssertEqual(full.hitCount, [1, 2, 1, 0, 0])
    }

    func testPerDocumentRecallErrors() {
        assertInvalidInput("query 5") {
            _ = try Metrics.perDocumentRecall(rankings: [[0]], qrels: [5: [0]], documentCount: 2)
        }
        assertInvalidInput("document 7") {
            _ = try Metrics.perDocumentRecall(rankings: [[0]], qrels: [0: [7]], documentCount: 2)
        }
        assertInvalidInput("retrieved document -1") {
            _ = try Metrics.perDocumentRecall(rankings: [[-1]], qrels: [0: [0]], documentCount: 2)
        }
        assertInvalidInput("k must be") {
            _ = try Metrics.perDocumentRecall(rankings: [[0]], qrels: [0: [0]], documentCount: 2, k: 0)
        }
    }

    // MARK: - Bootstrap

    func testBootstrapCIOfTheMean() throws {
        var rng = TestRNG(seed: 4)
        let v = rng.array(400)
        let mean = Metrics.mean(v)!
        func meanCI(_ v: [Double], resamples: Int, seed: UInt64) -> (low: Double, high: Double)? {
            Metrics.bootstrap(count: v.count, resamples: resamples, level: 0.95, seed: seed) { picks in
                Metrics.mean(picks.map { v[$0] })
            }
        }
        let ci = try XCTUnwrap(meanCI(v, resamples: 500, seed: 9))
        XCTAssertTrue(ci.low < mean && mean < ci.high)
        // Normal approximation: half-width 1.96·sd/√n.
        let sd = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
        let half = 1.96 * sd / Double(v.count).squareRoot()
        XCTAssertEqual((ci.high - ci.low) / 2, half, accuracy: 0.2 * half)
        // Deterministic for a seed.
        let again = try XCTUnwrap(meanCI(v, resamples: 500, seed: 9))
        XCTAssertEqual(ci.low, again.low)
        XCTAssertEqual(ci.high, again.high)
        // Constant data: a point interval. Empty data, or no statistic kept: no interval.
        let c = try XCTUnwrap(meanCI([2, 2, 2], resamples: 50, seed: 1))
        XCTAssertEqual(c.low, 2); XCTAssertEqual(c.high, 2)
        XCTAssertNil(meanCI([], resamples: 50, seed: 1))
        XCTAssertNil(Metrics.bootstrap(count: 3, resamples: 10, level: 0.95, seed: 1) { _ in nil })
    }

    func testAUROCCIPairedResampling() {
        var rng = TestRNG(seed: 5)
        let labels = (0..<120).map { $0 % 3 == 0 }
        let scores = labels.map { ($0 ? 0.4 : 0) + rng.uniform(1) }
        let point = Metrics.auroc(scores: scores, positives: labels)!
        let ci = Metrics.aurocCI(scores: scores, positives: labels, resamples: 300, seed: 11)!
        XCTAssertTrue(ci.low < point && point < ci.high, "\(ci) vs \(point)")
        XCTAssertTrue(ci.low >= 0 && ci.high <= 1)
        let again = Metrics.aurocCI(scores: scores, positives: labels, resamples: 300, seed: 11)!
        XCTAssertEqual(ci.low, again.low); XCTAssertEqual(ci.high, again.high)
        XCTAssertNil(Metrics.aurocCI(scores: [1, 2], positives: [true, true], seed: 1))
    }

    // MARK: - kNN distance

    func testKNNMatchesLoopReference() throws {
        var rng = TestRNG(seed: 6)
        let reference = unitVectors(40, 16, &rng)
        // 300 queries with a small reference: two gemm blocks of 256 rows. Not normalised on
        // purpose: the detector uses cosine similarity.
        let queries = (0..<300).map { _ in rng.array(16, scale: 3).floats }
        for k in [1, 5, 40, 100] {
            let det = try KNNDistance(reference: reference, k: k)
            XCTAssertEqual(det.k, min(k, 40))
            let got = try det.scores(queries)
            let want = RefMetrics.knnScores(reference: reference.map { $0.doubles }, queries: queries.map { $0.doubles }, k: k)
            XCTAssertEqual(got.count, want.count)
            for i in got.indices { XCTAssertEqual(got[i], want[i], accuracy: 2e-6, "k = \(k), query \(i)") }
        }
        // A reference document scored against its own reference finds itself at similarity 1.
        let one = try KNNDistance(reference: reference, k: 1).scores([reference[3]])
        XCTAssertEqual(one[0], 0, accuracy: 1e-6)
        XCTAssertEqual(try KNNDistance(reference: reference).scores([]), [])
    }

    // MARK: - Mahalanobis

    func testMahalanobisMatchesGaussJordanReference() throws {
        var rng = TestRNG(seed: 7)
        // More documents than dimensions, and fewer (where the ridge makes Σ invertible).
        for (n, d, lambda) in [(60, 12, 1e-3), (8, 12, 1e-3), (8, 12, 0.5), (30, 6, 0.0)] {
            let reference = unitVectors(n, d, &rng)
            let queries = (0..<10).map { _ in rng.array(d).floats } + [reference[0]]
            let det = try Mahalanobis(reference: reference, lambda: lambda)
            let got = try det.scores(queries)
            let want = RefMetrics.mahalanobisScores(reference: reference.map { $0.doubles },
                                                    queries: queries.map { $0.doubles }, lambda: lambda)!
            for i in got.indices {
                XCTAssertEqual(got[i], want[i], accuracy: 1e-8 * max(1, abs(want[i])), "n \(n) d \(d) λ \(lambda) query \(i)")
            }
            // The mean itself is at distance 0.
            XCTAssertEqual(try det.scores([det.mean.map { Float($0) }])[0], 0, accuracy: 1e-6 * want.max()!)
        }
    }

    func testMahalanobisScoresManyDocumentsInBlocks() throws {
        // More documents than one dpotrs block (2,048): scores must not depend on the block.
        var rng = TestRNG(seed: 8)
        let reference = unitVectors(20, 4, &rng)
        let det = try Mahalanobis(reference: reference)
        let queries = unitVectors(2_100, 4, &rng)
        let all = try det.scores(queries)
        let tail = try det.scores(Array(queries[2_040...]))
        for i in tail.indices { XCTAssertEqual(all[2_040 + i], tail[i], accuracy: 1e-9 * max(1, tail[i])) }
    }

    func testMahalanobisNotPositiveDefinite() {
        let same: [[Float]] = Array(repeating: [0.6, 0.8, 0], count: 5)
        assertInvalidInput("not positive definite") { _ = try Mahalanobis(reference: same) }
        assertInvalidInput("mahalanobis") { _ = try Mahalanobis(reference: [[1, 0, 0]]) }
        // λ = 0 with two documents in 3 dimensions: Σ has rank 1.
        assertInvalidInput("not positive definite") {
            _ = try Mahalanobis(reference: [[1, 0, 0], [0, 1, 0]], lambda: 0)
        }
        // The advice is what a user can do (no option of the command line sets lambda).
        assertInvalidInput("more documents, distinct from one another") { _ = try Mahalanobis(reference: same) }
        XCTAssertThrowsError(try Mahalanobis(reference: same)) { error in
            XCTAssertFalse("\(error)".contains("larger lambda"), "\(error)")
        }
        assertInvalidInput("lambda") { _ = try Mahalanobis(reference: [[1, 0], [0, 1]], lambda: -1) }
        assertInvalidInput("lambda") { _ = try Mahalanobis(reference: [[1, 0], [0, 1]], lambda: .nan) }
    }

    // MARK: - IPQ

    /// 16 well-separated unit cluster centres in 8 dimensions: ±e₀ … ±e₇.
    private func clusterCentres(_ s: Int) -> [[Double]] {
        (0..<(2 * s)).map { c in
            var v = [Double](repeating: 0, count: s)
            v[c / 2] = c % 2 == 0 ? 1 : -1
            return v
        }
    }

    /// n documents of 8 groups × 8 dimensions; in group g document i sits near centre (i + 3g) % 16.
    private func clusteredDocuments(_ n: Int, _ rng: inout TestRNG, noise: Double = 0.02) -> [[Float]] {
        let centres = clusterCentres(8)
        return (0..<n).map { i in
            (0..<8).flatMap { g in centres[(i + 3 * g) % 16].map { $0 + rng.uniform(noise) } }.floats
        }
    }

    func testIPQFindsWellSeparatedClusters() throws {
        var rng = TestRNG(seed: 10)
        let reference = clusteredDocuments(160, &rng)
        let det = try IPQ(reference: reference, seed: 42)
        XCTAssertEqual(det.groups, 8)
        XCTAssertEqual(det.subDimension, 8)
        let centres = clusterCentres(8)
        for g in 0..<8 {
            XCTAssertEqual(det.centroids[g].count, 16)
            // Every true centre has exactly one centroid within 0.05.
            for c in centres {
                let close = det.centroids[g].filter { Ref.normalizedError($0, c) < 0.05 }
                XCTAssertEqual(close.count, 1, "group \(g): centre \(c) matched by \(close.count) centroids")
            }
            XCTAssertLessThanOrEqual(det.iterations[g], 50)
        }
        // Reference points are close to their centroids; a point between the clusters is far.
        let ref = try det.scores(Array(reference.prefix(20)))
        XCTAssertLessThan(ref.max()!, 0.08)   // noise: about √(8·0.02²/3) ≈ 0.033
        let between = [Float](repeating: 1, count: 64)   // each sub-vector (1,…,1)/√8
        let far = try det.scores([between])[0]
        XCTAssertGreaterThan(far, 1.0)                      // √(2 − 2/√8) ≈ 1.14 from every ±eᵢ
        XCTAssertGreaterThan(far, 10 * ref.max()!)
    }

    func testIPQDeterministicForASeed() throws {
        var rng = TestRNG(seed: 11)
        let reference = unitVectors(90, 32, &rng)
        let queries = unitVectors(15, 32, &rng)
        let a = try IPQ(reference: reference, groups: 4, centroids: 6, seed: 3)
        let b = try IPQ(reference: reference, groups: 4, centroids: 6, seed: 3)
        XCTAssertEqual(a.centroids, b.centroids)
        XCTAssertEqual(try a.scores(queries), try b.scores(queries))
        // A reference point scores lower than a point far from every sub-vector cluster.
        let s = try a.scores([reference[0], queries[0].map { -$0 }])
        XCTAssertTrue(s.allSatisfy { $0.isFinite && $0 >= 0 })
        let refScores = try a.scores(reference)
        let q = try a.scores(queries)
        XCTAssertLessThan(Metrics.mean(refScores)!, Metrics.mean(q)!)
        // Groups run on the engine's workers: the result must not depend on their number.
        let saved = BLAS.engineThreads
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(1)
        let one = try IPQ(reference: reference, groups: 4, centroids: 6, seed: 3)
        BLAS.setThreads(2)
        let two = try IPQ(reference: reference, groups: 4, centroids: 6, seed: 3)
        XCTAssertEqual(one.centroids, a.centroids)
        XCTAssertEqual(two.centroids, a.centroids)
        XCTAssertEqual(one.iterations, two.iterations)
    }

    func testIPQFewerDistinctPointsThanCentroids() throws {
        // Three distinct documents, 16 centroids requested: k-means++ stops at 3.
        let reference: [[Float]] = [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1], [0, 1, 0, 1]]
        let det = try IPQ(reference: reference, groups: 2, centroids: 16, seed: 1)
        XCTAssertEqual(det.centroids.map { $0.count }, [2, 2])
        let s = try det.scores(reference)
        for v in s { XCTAssertEqual(v, 0, accuracy: 1e-12) }
        // A zero sub-vector stays zero: its distance to a unit centroid is 1.
        XCTAssertEqual(try det.scores([[0, 0, 0, 1]])[0], 0.5, accuracy: 1e-12)
    }

    // MARK: - Input errors common to the detectors

    func testDetectorInputErrors() throws {
        let good: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]]
        let makers: [(String, ([[Float]]) throws -> OODDetector)] = [
            ("knn", { try KNNDistance(reference: $0) }),
            ("mahalanobis", { try Mahalanobis(reference: $0) }),
            ("ipq", { try IPQ(reference: $0, groups: 2) }),
        ]
        for (name, make) in makers {
            assertInvalidInput("\(name): the reference set is empty") { _ = try make([]) }
            assertInvalidInput("\(name): reference embedding 2 has dimension 3, expected 4") {
                _ = try make([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1]])
            }
            assertInvalidInput("\(name): reference embedding 1 has a non-finite value") {
                _ = try make([[1, 0, 0, 0], [0, .nan, 0, 0]])
            }
            assertInvalidInput("\(name): reference embedding 0 is empty") { _ = try make([[], []]) }
            let det = try make(good)
            XCTAssertEqual(det.name, name)
            assertInvalidInput("\(name): scored embedding 1 has dimension 5, expected 4") {
                _ = try det.scores([[1, 0, 0, 0], [1, 0, 0, 0, 0]])
            }
            assertInvalidInput("\(name): scored embedding 0 has a non-finite value") {
                _ = try det.scores([[.infinity, 0, 0, 0]])
            }
            XCTAssertEqual(try det.scores([]), [])
        }
        assertInvalidInput("knn: k must be >= 1") { _ = try KNNDistance(reference: good, k: 0) }
        assertInvalidInput("knn: reference embedding 1 is the zero vector") {
            _ = try KNNDistance(reference: [[1, 0], [0, 0]])
        }
        assertInvalidInput("knn: scored embedding 0 is the zero vector") {
            _ = try KNNDistance(reference: good).scores([[0, 0, 0, 0]])
        }
        assertInvalidInput("not divisible by 3 groups") { _ = try IPQ(reference: good, groups: 3) }
        assertInvalidInput("ipq: groups") { _ = try IPQ(reference: good, groups: 0) }
        assertInvalidInput("ipq: centroids") { _ = try IPQ(reference: good, groups: 2, centroids: 0) }
        assertInvalidInput("ipq: maxIterations") { _ = try IPQ(reference: good, groups: 2, maxIterations: 0) }
        assertInvalidInput("ipq: tolerance") { _ = try IPQ(reference: good, groups: 2, tolerance: -1) }
    }
}
