import Foundation
import XCTest
@testable import GradNormIR
import TransformerLite

/// Query-free signals, the failure model, document selection and retriever selection.
final class PredictionTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("prediction-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ bytes: Data) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    let docs = (0..<6).map { Document(id: "d\($0)", title: "", text: "text \($0)") }

    // MARK: - Document selection

    func testSelectionsChooseDocumentsInCorpusOrder() throws {
        XCTAssertEqual(try DocumentSelection.all.indices(in: docs), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try DocumentSelection.first(2).indices(in: docs), [0, 1])
        XCTAssertEqual(try DocumentSelection.first(60).indices(in: docs), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try DocumentSelection.sample(3, seed: 4).indices(in: docs), seededSample(count: 6, sample: 3, seed: 4))
        let ids = try DocumentSelection.readIds(try write("ids.txt", Data("d4\n  d1\t\nd3\n".utf8)))
        XCTAssertEqual(try ids.indices(in: docs), [1, 3, 4])
        XCTAssertTrue(ids.recorded.hasPrefix("ids 3 "), ids.recorded)
        // The recorded selection follows the ids' content, not the file name.
        let same = try DocumentSelection.readIds(try write("other.txt", Data("d4\nd1\nd3\n".utf8)))
        XCTAssertEqual(same.recorded, ids.recorded)
        XCTAssertNotEqual(try DocumentSelection.readIds(try write("x.txt", Data("d4\nd1\n".utf8))).recorded, ids.recorded)
    }

    func testBadIdFilesAreRefusedNamingTheLine() throws {
        let cases: [(Data, String)] = [
            (Data("d1\n\nd2\n".utf8), ":2"),
            (Data("d1\nd2\nd1\n".utf8), "again (first on line 1)"),
            (Data([0x64, 0xFF, 0x0A]), ":1: invalid UTF-8"),
            (Data(), "no document ids"),
        ]
        for (i, (bytes, expected)) in cases.enumerated() {
            let path = try write("bad\(i).txt", bytes)
            XCTAssertThrowsError(try DocumentSelection.readIds(path), "case \(i)") { e in
                let message = "\(e)"
                XCTAssertTrue(message.contains(path) && message.contains(expected), message)
            }
        }
        let unknown = try DocumentSelection.readIds(try write("u.txt", Data("d1\nnope\n".utf8)))
        XCTAssertThrowsError(try unknown.indices(in: docs)) { e in XCTAssertTrue("\(e)".contains("'nope'"), "\(e)") }
        XCTAssertThrowsError(try DocumentSelection.readIds(dir.appendingPathComponent("missing").path))
    }

    // MARK: - Signals

    func testTokenSignalsCountPiecesWordsUnknownsAndContinuations() {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "aff", "!"]
        let tokenizer = BertTokenizer(vocabulary: vocab)
        // "unaffable aff! zzz": pieces un ##aff ##able aff ! [UNK] = 6 over 3 words.
        let s = DocumentSignals.tokens(of: "unaffable aff! zzz", tokenizer: tokenizer)
        XCTAssertEqual(s.pieces, 6)
        XCTAssertEqual(s.piecesPerWord, 2.0)
        XCTAssertEqual(s.unknownShare, 1.0 / 6.0)
        XCTAssertEqual(s.continuationShare, 2.0 / 6.0)
        let empty = DocumentSignals.tokens(of: "   ", tokenizer: tokenizer)
        XCTAssertEqual([empty.piecesPerWord, empty.unknownShare, empty.continuationShare], [0, 0, 0])
        XCTAssertEqual(empty.pieces, 0)
    }

    /// Density and nearest equal a Float64 brute force over the normalised vectors.
    func testNeighbourhoodSignalsEqualAFloat64BruteForce() throws {
        var rng = SplitMix64(seed: 11)
        let n = 40, d = 16
        let vectors: [[Float]] = (0..<n).map { _ in
            var v = (0..<d).map { _ in Float(Double(rng.next() % 2001) / 1000 - 1) }
            v.withUnsafeMutableBufferPointer { _ = l2Normalize($0) }
            return v
        }
        let tokenizer = BertTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "text"])
        let extractor = try SignalExtractor(texts: (0..<n).map { "text \($0)" }, embeddings: vectors, tokenizer: tokenizer,
                                            neighbours: 5)
        let positions = [0, 7, 39]
        let got = extractor.signals(of: positions)
        for (q, i) in positions.enumerated() {
            let sims = (0..<n).filter { $0 != i }.map { j in
                zip(vectors[i], vectors[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }.sorted(by: >)
            XCTAssertEqual(got[q].nearest, sims[0], accuracy: 1e-6)
            XCTAssertEqual(got[q].density, sims.prefix(5).reduce(0, +) / 5, accuracy: 1e-6)
            XCTAssertEqual(got[q].pieces, 2, "[UNK] for the number, 'text'")
        }
        XCTAssertThrowsError(try SignalExtractor(texts: ["a"], embeddings: [], tokenizer: tokenizer))
        XCTAssertThrowsError(try SignalExtractor(texts: ["a"], embeddings: [[1]], tokenizer: tokenizer, neighbours: 0))
        // One document: no neighbour, density 0.
        let alone = try SignalExtractor(texts: ["text"], embeddings: [[1, 0]], tokenizer: tokenizer)
        XCTAssertEqual(alone.signals(of: [0])[0].density, 0)
    }

    func testFailureModelIsTheLogisticOfStandardisedFeatures() {
        let m = FailureModel(means: [0.5, 0.6, 1.5, 0, 0.2, 4], scales: [0.1, 0.1, 0.5, 0.01, 0.1, 1],
                             weights: [1, -0.5, 2, 0.3, 0, -1], intercept: -0.25)
        let s = DocumentSignals(density: 0.7, nearest: 0.8, piecesPerWord: 2, unknownShare: 0.02,
                                continuationShare: 0.4, pieces: 99)
        let z = -0.25 + 1 * (0.7 - 0.5) / 0.1 - 0.5 * (0.8 - 0.6) / 0.1 + 2 * (2 - 1.5) / 0.5 + 0.3 * 0.02 / 0.01
            + 0 - 1 * (log(100.0) - 4) / 1
        XCTAssertEqual(m.probability(s), 1 / (1 + exp(-z)), accuracy: 1e-12)
        // The shipped model has a finite, non-zero coefficient for each feature.
        let d = FailureModel.default
        XCTAssertEqual(d.weights.count, FailureModel.featureNames.count)
        XCTAssertTrue(d.weights.allSatisfy { $0.isFinite } && d.weights.contains { $0 != 0 })
        XCTAssertTrue(d.scales.allSatisfy { $0 > 0 })
    }

    func testPredictionLinesCarryTheScoreTheDetectorAndTheSignals() throws {
        let s = DocumentSignals(density: 0.5, nearest: 0.75, piecesPerWord: 1.25, unknownShare: 0, continuationShare: 0.25, pieces: 8)
        let p = Prediction(id: "x", oodScore: 0.5, detector: .density, signals: s)
        XCTAssertEqual(p.jsonLine, #"{"_id": "x", "ood_score": 0.5, "detector": "density", "density": 0.5, "nearest": 0.75, "pieces_per_word": 1.25, "unknown_share": 0.0, "continuation_share": 0.25, "pieces": 8}"#)
        let g = Prediction(id: "y", oodScore: nil, detector: .gradnormir, signals: s,
                           score: DocumentScore(id: "y", gradNorm: nil, records: 0, meanLoss: nil, reason: "no positive"))
        XCTAssertTrue(g.jsonLine.hasPrefix(#"{"_id": "y", "ood_score": null, "detector": "gradnormir""#), g.jsonLine)
        XCTAssertTrue(g.jsonLine.hasSuffix(#""gradnorm": null, "loss": null, "records": 0, "reason": "no positive"}"#), g.jsonLine)
    }

    // MARK: - Prediction files read as score files

    func testPredictionFilesReadLikeScoreFiles() throws {
        let path = try write("p.jsonl", Data("""
            {"_id": "a", "ood_score": -0.5, "detector": "density"}
            {"_id": "b", "ood_score": null, "detector": "gradnormir"}
            {"_id": "c", "ood_score": 2}

            """.utf8))
        let rows = try ScoreFile.read(path)
        XCTAssertEqual(rows.map(\.id), ["a", "b", "c"])
        XCTAssertEqual(rows.map(\.score), [-0.5, nil, 2])
        let negative = try write("n.jsonl", Data(#"{"_id": "a", "gradnorm": -1}"#.utf8))
        XCTAssertThrowsError(try ScoreFile.read(negative)) { XCTAssertTrue("\($0)".contains("non-negative"), "\($0)") }
        let neither = try write("e.jsonl", Data(#"{"_id": "a", "score": 1}"#.utf8))
        XCTAssertThrowsError(try ScoreFile.read(neither)) { XCTAssertTrue("\($0)".contains("ood_score"), "\($0)") }
        let text = try write("t.jsonl", Data(#"{"_id": "a", "ood_score": "high"}"#.utf8))
        XCTAssertThrowsError(try ScoreFile.read(text)) { XCTAssertTrue("\($0)".contains(":1"), "\($0)") }
    }

    // MARK: - Retriever selection

    func testEvidenceThresholdsAtTheReferenceQuantileAndRanksByOODRatio() throws {
        let p = RetrieverSelection.referencePrefix
        // Reference scores 1…10: the 0.9 quantile (type 7) is 9.1; corpus 5, 9.5, 12 → 2 of 3 above.
        let a = try RetrieverSelection.evidence(
            model: "A", modelFingerprint: "fa",
            predictions: (1...10).map { (p + "r\($0)", Double($0)) } + [("x", 5), ("y", 9.5), ("z", 12), ("u", nil)],
            falseAlarm: 0.1)
        XCTAssertEqual(a.threshold, 9.1, accuracy: 1e-12)
        XCTAssertEqual(a.referenceScored, 10)
        XCTAssertEqual(a.referenceOODRatio, 0.1, accuracy: 1e-12)
        XCTAssertEqual(a.scored, 3)
        XCTAssertEqual(a.oodCount, 2)
        XCTAssertEqual(a.meanScore, (5 + 9.5 + 12) / 3, accuracy: 1e-12)
        // B's scores are ten times A's: the same decisions, so the same ratio (scales do not matter).
        let b = try RetrieverSelection.evidence(
            model: "B", modelFingerprint: "fb",
            predictions: (1...10).map { (p + "r\($0)", Double($0) * 10) } + [("x", 50), ("y", 20), ("z", 30)],
            falseAlarm: 0.1)
        XCTAssertEqual(b.oodCount, 0)
        XCTAssertEqual(RetrieverSelection.rank([a, b]).map(\.model), ["B", "A"])
        XCTAssertThrowsError(try RetrieverSelection.evidence(model: "C", modelFingerprint: "", predictions: [(p + "r", 1), ("x", 1)],
                                                             falseAlarm: 0.1))
        XCTAssertThrowsError(try RetrieverSelection.evidence(model: "C", modelFingerprint: "", predictions: [(p + "r", 1), (p + "s", 2)],
                                                             falseAlarm: 0.1))
        XCTAssertThrowsError(try RetrieverSelection.jointDocuments(corpus: [Document(id: p + "a", title: "", text: "t")],
                                                                   reference: [Document(id: "a", title: "", text: "u")]))
    }
}
