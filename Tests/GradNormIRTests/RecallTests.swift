import Foundation
import XCTest
@testable import GradNormIR
import TestSupport

/// Per-query recall, the dev/test query split and the paired sign test: against a brute-force
/// Float64 ranking on the real model, exact binomial sums, and hand-counted examples.
final class RecallTests: XCTestCase {
    // MARK: - Sign test

    /// 2·Σ_{i ≤ min} C(n, i) / 2ⁿ with exact integer binomials (n ≤ 60 fits in UInt64).
    private func referenceSignTest(_ g: Int, _ l: Int) -> Double {
        let n = g + l
        if n == 0 { return 1 }
        var c: UInt64 = 1, sum: UInt64 = 0
        for i in 0...min(g, l) {
            if i > 0 { c = c * UInt64(n - i + 1) / UInt64(i) }
            sum += c
        }
        return min(1, 2 * Double(sum) / pow(2, Double(n)))
    }

    func testSignTestMatchesExactBinomialSums() {
        XCTAssertEqual(Metrics.signTest(gained: 8, lost: 0), 2.0 / 256, accuracy: 1e-15)
        XCTAssertEqual(Metrics.signTest(gained: 0, lost: 0), 1)
        XCTAssertEqual(Metrics.signTest(gained: 5, lost: 5), 1, "a balanced split is capped at 1")
        XCTAssertEqual(Metrics.signTest(gained: 3, lost: 9), Metrics.signTest(gained: 9, lost: 3), "two-sided")
        for g in 0...30 {
            for l in stride(from: 0, through: 30, by: 3) {
                XCTAssertEqual(Metrics.signTest(gained: g, lost: l), referenceSignTest(g, l),
                               accuracy: 1e-12 * max(1e-300, referenceSignTest(g, l)) + 1e-15, "\(g):\(l)")
            }
        }
        // Large n stays finite and tiny (log-space): 2·2⁻²⁰⁰⁰.
        let p = Metrics.signTest(gained: 2000, lost: 0)
        XCTAssertTrue(p >= 0 && p < 1e-300, "\(p)")
    }

    // MARK: - Split

    func testSplitHalvesAreDisjointCoverEverythingAndDependOnTheSeed() {
        let ids = (0..<2000).map { "q-corpus-\($0)" }
        let dev = Set(ids.filter { QuerySplit.dev.contains($0) })
        let test = Set(ids.filter { QuerySplit.test.contains($0) })
        XCTAssertTrue(dev.isDisjoint(with: test))
        XCTAssertEqual(dev.count + test.count, ids.count)
        XCTAssertTrue(ids.allSatisfy { QuerySplit.all.contains($0) })
        XCTAssertTrue((900...1100).contains(dev.count), "roughly half: \(dev.count)")
        let dev7 = Set(ids.filter { QuerySplit.dev.contains($0, seed: 7) })
        XCTAssertNotEqual(dev, dev7)
        XCTAssertTrue((300...700).contains(dev.intersection(dev7).count), "seeds give unrelated halves")
    }

    // MARK: - Comparison

    func testComparisonCountsPairedWinsAndRefusesMismatchedRuns() throws {
        let base = QueryRecall(ids: ["a", "b", "c", "d", "e"], recall: [1, 0, 0.5, 1, 0], k: 10)
        let cand = QueryRecall(ids: ["a", "b", "c", "d", "e"], recall: [1, 1, 1, 0, 1], k: 10)
        let c = try RecallComparison(baseline: base, candidate: cand)
        XCTAssertEqual(c.gained, 3)
        XCTAssertEqual(c.lost, 1)
        XCTAssertEqual(c.delta, 0.8 - 0.5, accuracy: 1e-12)
        XCTAssertEqual(c.signTestP, referenceSignTest(3, 1), accuracy: 1e-15)
        XCTAssertThrowsError(try RecallComparison(baseline: base, candidate: QueryRecall(ids: ["a"], recall: [1], k: 10)))
        XCTAssertThrowsError(try RecallComparison(baseline: base, candidate: QueryRecall(ids: base.ids, recall: base.recall, k: 5)))
    }

    // MARK: - Query recall on the real model

    /// A dataset with queries of one, two and three relevant documents, in a temporary folder.
    private func multiRelevantDataset() throws -> BEIRDataset {
        let src = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recall-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("qrels"), withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("corpus.jsonl"), to: dir.appendingPathComponent("corpus.jsonl"))
        let queries = try String(contentsOf: src.appendingPathComponent("queries.jsonl"), encoding: .utf8)
        try queries.write(to: dir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        let qrels = """
            query-id\tcorpus-id\tscore
            q00\ts00\t1
            q00\ts01\t1
            q06\ts06\t1
            q06\ts07\t1
            q06\ts08\t1
            q12\ts12\t1
            q18\ts18\t1
            q18\ts19\t0
            q24\ts24\t1
            q09\ts09\t1
            q27\ts27\t1
            q19\ts19\t1
            q19\ts02\t1

            """
        try qrels.write(to: dir.appendingPathComponent("qrels/test.tsv"), atomically: true, encoding: .utf8)
        return try BEIRDataset.load(folder: dir.path)
    }

    func testQueryRecallMatchesBruteForceFloat64Ranking() throws {
        let model = try SharedModel.retriever()
        let data = try multiRelevantDataset()
        let docEmb = try model.searchEmbeddings(data.corpus.map(\.fullText), maxLength: nil)
        let pool = data.corpus.indices.filter { !data.relevantQueries(of: data.corpus[$0].id).isEmpty }
        for k in [1, 2, 3, 5] {
            let got = try Evaluation.queryRecall(dataset: data, retriever: model, k: k)
            let queries = data.queries.filter { !data.relevantDocuments(of: $0.id).isEmpty }
            XCTAssertEqual(got.ids, queries.map(\.id))
            let qEmb = try model.searchEmbeddings(queries.map(\.text), maxLength: nil)
            for (qi, q) in queries.enumerated() {
                let scored = pool.map { d -> (Int, Double) in
                    (d, zip(qEmb[qi], docEmb[d]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
                }.sorted { $0.1 > $1.1 }
                let top = Set(scored.prefix(k).map(\.0))
                let relevant = Set(data.relevantDocuments(of: q.id).compactMap { data.documentIndex[$0] })
                let expected = Double(top.intersection(relevant).count) / Double(relevant.count)
                XCTAssertEqual(got.recall[qi], expected, "k=\(k) \(q.id)")
            }
        }
        // The score-0 qrel line does not make s19 relevant to q18.
        XCTAssertEqual(data.relevantDocuments(of: "q18"), ["s18"])
        // A filter that keeps nothing is an error naming the dataset.
        XCTAssertThrowsError(try Evaluation.queryRecall(dataset: data, retriever: model, k: 1, include: { _ in false })) {
            XCTAssertTrue("\($0)".contains("no query"), "\($0)")
        }
        XCTAssertThrowsError(try Evaluation.queryRecall(dataset: data, retriever: model, k: 0))
    }

    func testMeanQueryRecallEqualsCorpusRecallWhenEveryQueryHasOneDocument() throws {
        let model = try SharedModel.retriever()
        let data = try BEIRDataset.load(folder: TestPaths.packageRoot
            .appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path)
        for k in [1, 3] {
            let q = try Evaluation.queryRecall(dataset: data, retriever: model, k: k)
            let d = try Evaluation.groundTruth(dataset: data, retriever: model, k: k).recall.recall.compactMap { $0 }
            XCTAssertEqual(q.mean, d.reduce(0, +) / Double(d.count), accuracy: 1e-12)
        }
    }
}
