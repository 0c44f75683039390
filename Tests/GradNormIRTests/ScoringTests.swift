import Foundation
import XCTest
import GradNormIR
import TestSupport
@testable import TransformerLite

/// Positive and negative sampling (METHOD.md steps 2–3) and document scores, on the real model and
/// a 30-document fixture corpus.
final class ScoringTests: XCTestCase {
    func fixture() throws -> (Retriever, [Document]) {
        let model = try SharedModel.retriever()
        let url = try XCTUnwrap(Bundle.module.url(forResource: "small-corpus", withExtension: nil, subdirectory: "Fixtures"))
        let (docs, skipped) = try BEIRDataset.loadCorpus(path: url.path)
        XCTAssertEqual(skipped, 0)
        return (model, docs)
    }

    func smallConfig() -> ScoringConfig {
        var c = ScoringConfig()
        c.positives = 3
        c.negatives = 2
        c.maxLength = 64
        c.seed = 7
        return c
    }

    func testDepthRule() {
        let c = ScoringConfig()
        XCTAssertEqual(c.exclusionDepth(corpusSize: 300), 32, "2·n_pos beats a tenth of 300")
        XCTAssertEqual(c.exclusionDepth(corpusSize: 700), 70)
        XCTAssertEqual(c.exclusionDepth(corpusSize: 1_000), 100, "the paper's depth from 1,000 documents on")
        XCTAssertEqual(c.exclusionDepth(corpusSize: 30_000), 100)
        XCTAssertEqual(c.exclusionDepth(corpusSize: 10), 9, "never deeper than the rest of the corpus")
        XCTAssertEqual(c.candidateDepth(corpusSize: 300), 100)
        XCTAssertEqual(c.candidateDepth(corpusSize: 50), 49)
        var o = c
        o.exclusionDepth = 5
        o.candidateDepth = 7
        XCTAssertEqual(o.exclusionDepth(corpusSize: 300), 5)
        XCTAssertEqual(o.candidateDepth(corpusSize: 300), 7)
    }

    func testSamplingFollowsTheMethod() throws {
        let (model, docs) = try fixture()
        var config = smallConfig()
        config.exclusionDepth = 4
        config.candidateDepth = 12
        let corpus = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: config)
        let queries = RecordGradient(retriever: model)
        var checkedRecords = 0
        for d in 0..<docs.count {
            let pos = corpus.positives(of: d, records: queries)
            XCTAssertEqual(pos.count, 3)
            XCTAssertFalse(pos.contains(d), "the document is never its own positive")
            XCTAssertEqual(pos, corpus.positives(of: d, records: queries), "same seed, same positives")
            let excluded = Set(corpus.neighbours[d].prefix(4)).union([d])
            for r in corpus.records(of: d, positives: pos) {
                checkedRecords += 1
                XCTAssertEqual(r.negatives.count, 2)
                let candidates = corpus.neighbours[r.positive].prefix(12).filter { $0 != r.positive }
                XCTAssertFalse(r.negatives.contains(candidates[0]), "skip-first: the positive's nearest neighbour is skipped")
                for n in r.negatives {
                    XCTAssertFalse(excluded.contains(n), "negative \(n) lies in N(\(d))")
                    XCTAssertNotEqual(n, r.positive)
                    XCTAssertTrue(candidates.contains(n), "negatives come from N(x)")
                }
                // They are the first valid ones, in neighbour order.
                let expected = Array(candidates.dropFirst().filter { !excluded.contains($0) }.prefix(2))
                XCTAssertEqual(r.negatives, expected)
            }
        }
        XCTAssertGreaterThanOrEqual(checkedRecords, docs.count, "the sampling checks ran on records")
        // With dropout p = 0.02 the positives are (nearly always) the plain nearest neighbours.
        let plain = corpus.neighbours[0].prefix(3)
        XCTAssertEqual(Set(corpus.positives(of: 0, records: queries)).intersection(plain).count >= 2, true)
    }

    func testReusedIndexEqualsAFreshOne() throws {
        let (model, docs) = try fixture()
        let texts = docs.map(\.fullText)
        var a = smallConfig(), b = smallConfig()
        a.exclusionDepth = 4; a.candidateDepth = 12
        b.exclusionDepth = 6; b.candidateDepth = 8; b.positives = 5; b.temperature = 0.1
        let base = try CorpusIndex(documents: texts, retriever: model, config: a)
        let queries = RecordGradient(retriever: model)
        for (cfg, deeper) in [(b, false), ({ var c = a; c.candidateDepth = 20; return c }(), true)] {
            let reused = try CorpusIndex(reusing: base, config: cfg)
            let fresh = try CorpusIndex(documents: texts, retriever: model, config: cfg)
            XCTAssertEqual(reused.neighbours, fresh.neighbours, deeper ? "searched again when deeper" : "a prefix when shallower")
            XCTAssertEqual(reused.tokenIds, fresh.tokenIds)
            for d in [0, 7] {
                let pos = reused.positives(of: d, records: queries)
                XCTAssertEqual(pos, fresh.positives(of: d, records: queries))
                XCTAssertEqual(reused.records(of: d, positives: pos), fresh.records(of: d, positives: pos))
            }
        }
        var other = a
        other.maxLength = 32
        XCTAssertThrowsError(try CorpusIndex(reusing: base, config: other), "another length means other embeddings")
    }

    func testPoolingOverrideAndDropoutFreePositivesAreTheNeighbours() throws {
        let (model, docs) = try fixture()
        let cls = try model.withPooling(.cls)
        XCTAssertEqual(cls.config.pooling, .cls)
        XCTAssertEqual(model.config.pooling, .mean, "the original is unchanged")
        XCTAssertTrue(try model.withPooling(.mean) === model)
        // CLS embeddings are the normalised first-token state, not the mean.
        let ids = try model.tokenize(docs[0].fullText, maxLength: 64)
        let e = cls.embed(ids: [ids])[0], m = model.embed(ids: [ids])[0]
        XCTAssertLessThan(zip(e, m).map(*).reduce(0, +), 0.999)
        // Without dropout the document query is d's own (unnormalised) pooled state, so its
        // positives are exactly its nearest neighbours, in either pooling.
        var c = smallConfig()
        c.dropout = 0
        for r in [model, cls] {
            let corpus = try CorpusIndex(documents: docs.map(\.fullText), retriever: r, config: c)
            let queries = RecordGradient(retriever: r)
            for d in [0, 3, 11] {
                XCTAssertEqual(corpus.positives(of: d, records: queries), Array(corpus.neighbours[d].prefix(c.positives)),
                               "\(r.config.pooling) pooling, document \(d)")
            }
        }
    }

    func testSkipFirstFlagChangesNegatives() throws {
        let (model, docs) = try fixture()
        var on = smallConfig(), off = smallConfig()
        on.exclusionDepth = 3; off.exclusionDepth = 3
        off.skipFirstNegative = false
        let a = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: on)
        let b = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: off)
        let queries = RecordGradient(retriever: model)
        let pos = a.positives(of: 5, records: queries)
        let ra = a.records(of: 5, positives: pos), rb = b.records(of: 5, positives: pos)
        XCTAssertFalse(ra.isEmpty)
        XCTAssertNotEqual(ra, rb)
    }

    func testDocumentScoresAreMeansOfRecordNormsAndUnscoredIsReported() throws {
        let (model, docs) = try fixture()
        let config = smallConfig()
        let corpus = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: config)
        let scorer = GradNormScorer(retriever: model, corpus: corpus)
        let s = scorer.score(document: 0, id: docs[0].id)
        let norm = try XCTUnwrap(s.gradNorm)
        // Recompute by hand from the records.
        let queries = RecordGradient(retriever: model)
        let plans = corpus.records(of: 0, positives: corpus.positives(of: 0, records: queries))
        XCTAssertEqual(s.records, plans.count)
        let rg = RecordGradient(retriever: model)
        let manual = plans.map { p in
            rg.compute(query: corpus.tokenIds[0], positive: corpus.tokenIds[p.positive], negatives: p.negatives.map { corpus.tokenIds[$0] },
                       temperature: config.temperature).gradNorm
        }.reduce(0, +) / Double(plans.count)
        XCTAssertEqual(norm, manual, accuracy: 1e-12 * manual)
        XCTAssertTrue(s.jsonLine.hasPrefix("{\"_id\": \"s00\", \"gradnorm\": "))

        // Two documents: no negatives can exist outside d's neighbourhood.
        let tiny = try CorpusIndex(documents: Array(docs.prefix(2)).map(\.fullText), retriever: model, config: config)
        let u = GradNormScorer(retriever: model, corpus: tiny).score(document: 0, id: "a")
        XCTAssertNil(u.gradNorm)
        XCTAssertEqual(u.records, 0)
        XCTAssertNotNil(u.reason)
        XCTAssertTrue(u.jsonLine.contains("\"gradnorm\": null"))
    }

    /// Documents scored side by side, one per worker, equal one-worker scores, in the order given.
    func testDocumentsSideBySideEqualOneWorkerScores() throws {
        let (model, docs) = try fixture()
        let corpus = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: smallConfig())
        let picked = [7, 0, 12, 3, 25, 9, 1]
        let saved = Parallel.workers
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(2)
        let together = GradNormScorer(retriever: model, corpus: corpus).score(documents: picked.map { ($0, docs[$0].id) })
        let alone = GradNormScorer(retriever: model, corpus: corpus)
        let expected = Parallel.alone { picked.map { alone.score(document: $0, id: docs[$0].id) } }
        XCTAssertEqual(together.map(\.id), picked.map { docs[$0].id })
        XCTAssertTrue(together.contains { $0.gradNorm != nil })
        XCTAssertEqual(together, expected)
        XCTAssertEqual(Parallel.available, 2, "the caller's own thread is not left alone")
    }

    func testScoreFileRefusesOtherSettingsAndForeignLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scorefile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.jsonl").path
        let settings = ScoreSettings(corpus: "c", corpusFingerprint: "f1", documents: 3, scored: "all", model: "m",
                                     modelFingerprint: "m1", config: ScoringConfig())
        do {
            let f = try ScoreFile(path: path, expectedIds: ["a", "b", "c"], settings: settings)
            try f.append("{\"_id\": \"a\", \"gradnorm\": 1.0, \"records\": 1, \"loss\": 0.5}")
        }
        // A torn line is cut, complete ones kept.
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write(Data("{\"_id\": \"b\", \"gradn".utf8))
        try h.close()
        // Paths are not compared: another spelling of the corpus and the model folder resumes.
        var moved = settings
        moved.corpus = "./c/"
        moved.model = "/elsewhere/m"
        let resumed = try ScoreFile(path: path, expectedIds: ["a", "b", "c"], settings: moved)
        XCTAssertEqual(resumed.done, ["a"])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8).filter { $0 == "\n" }.count, 1)
        // Content and settings are: each change is refused, naming what changed.
        var corpus = settings, model = settings, config = settings, scored = settings
        corpus.corpusFingerprint = "f2"
        model.modelFingerprint = "m2"
        config.config.positives = 8
        scored.scored = "sample 2"
        for (changed, words) in [(corpus, "the corpus changed"), (model, "the model changed"),
                                 (config, "positives 16 → 8"), (scored, "'all', now 'sample 2'")] {
            XCTAssertThrowsError(try ScoreFile(path: path, expectedIds: ["a", "b", "c"], settings: changed)) { e in
                XCTAssertTrue("\(e)".contains(words), "\(e)")
            }
        }
        XCTAssertThrowsError(try ScoreFile(path: path, expectedIds: ["z", "b"], settings: settings))
        // A sidecar of an earlier version (no fingerprints) is refused.
        try "{\"x\": 1}".write(toFile: path + ".meta.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ScoreFile(path: path, expectedIds: ["a", "b", "c"], settings: settings)) { e in
            XCTAssertTrue("\(e)".contains("no fingerprints"), "\(e)")
        }
    }
}

extension CorpusIndex {
    /// Document d's positives, its query encoded by `records` (as `GradNormScorer` does).
    func positives(of d: Int, records: RecordGradient) -> [Int] {
        positives(of: d, query: records.encodeQuery(tokenIds[d]), pooling: records.layout.config.pooling)
    }
}
