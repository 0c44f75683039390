import Foundation
import XCTest
import GradNormIR
import TestSupport
@testable import TransformerLite

/// The second real retriever, paraphrase-MiniLM-L3-v2 (3 layers, mean pooling, no normalisation),
/// converted by scripts/convert_onnx_minilm.py from the ONNX file of a PyPI wheel, against
/// onnxruntime on that original ONNX file, through the fixture written by
/// scripts/make_minilm_l3_fixture.py (the graph's own pooled output, each text alone).
final class SecondModelParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Record: Decodable { let text: String; let ids: [Int]; let embedding: [Float] }
        let model: String
        let max_length: Int
        let pooling: String
        let normalize: Bool
        let onnx_inputs: [String]
        let records: [Record]
    }

    static let model: Retriever? = try? Retriever.load(folder: TestPaths.secondModel.path)

    func loadModel() throws -> Retriever {
        let url = try TestPaths.requireSecondModel()
        if let m = Self.model { return m }
        return try Retriever.load(folder: url.path)  // throws the loader's own error
    }

    func loadFixture() throws -> Fixture { try loadJSONFixture("minilm_l3_parity", as: Fixture.self) }

    /// What the converted folder says: sizes, mean pooling without normalisation, 128 tokens.
    func testConfig() throws {
        let model = try loadModel()
        let fx = try loadFixture()
        let c = model.config
        XCTAssertEqual(c.numLayers, 3)
        XCTAssertEqual(c.hiddenSize, 384)
        XCTAssertEqual(c.numHeads, 12)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.vocabSize, 30_522)
        XCTAssertEqual(c.maxPositions, 512)
        XCTAssertEqual(c.typeVocabSize, 2)
        XCTAssertEqual(c.layerNormEps, 1e-12)
        XCTAssertEqual(c.pooling, .mean)
        XCTAssertFalse(c.normalize, "paraphrase-MiniLM-L3-v2 has no Normalize module")
        XCTAssertEqual(model.checkpoint.maxSeqLength, 128)
        XCTAssertEqual(model.defaultMaxLength, 128)
        XCTAssertTrue(model.checkpoint.lowercase)
        XCTAssertEqual(fx.model, "paraphrase-MiniLM-L3-v2")
        XCTAssertEqual(fx.pooling, "mean")
        XCTAssertEqual(fx.normalize, c.normalize)
        XCTAssertEqual(fx.max_length, model.defaultMaxLength)
        XCTAssertEqual(fx.onnx_inputs, ["input_ids", "attention_mask"])
        // Not normalised: the mean-pooled vector keeps its length (about 6.2 for "hello world").
        let a = try model.embed(["hello world"])[0]
        XCTAssertGreaterThan(sqrt(a.map { $0 * $0 }.reduce(0, +)), 1.5, "unnormalised mean-pooled vector expected")
    }

    /// The engine's tokenizer (vocab.txt, lowercase) gives the reference `tokenizers` ids, with the
    /// model's default 128-token truncation.
    func testTokenizerMatchesFixture() throws {
        let model = try loadModel()
        let fx = try loadFixture()
        XCTAssertEqual(fx.records.count, 40)
        XCTAssertTrue(fx.records.contains { $0.ids.count == fx.max_length }, "fixture must exercise truncation")
        XCTAssertTrue(fx.records.contains { $0.ids.count <= 3 })
        for r in fx.records {
            XCTAssertEqual(try model.tokenize(r.text), r.ids, "ids differ for \(r.text.prefix(60).debugDescription)")
            XCTAssertEqual(try model.tokenize(r.text, maxLength: fx.max_length), r.ids)
        }
    }

    /// Every fixture text, in one packed mixed-length batch: every embedding element within 1e-5 of
    /// onnxruntime's, on 1 and on 2 engine threads; and the same through `embed(_ texts:)`.
    func testEmbeddingsMatchOnnxRuntime() throws {
        let model = try loadModel()
        let fx = try loadFixture()
        let saved = BLAS.engineThreads
        defer { BLAS.setThreads(saved) }
        for threads in [1, 2] {
            BLAS.setThreads(threads)
            let fromIds = model.embed(ids: fx.records.map(\.ids), batchTokens: 4096)
            let fromTexts = try model.embed(fx.records.map(\.text))
            for (label, emb) in [("ids", fromIds), ("texts", fromTexts)] {
                XCTAssertEqual(emb.count, fx.records.count)
                let worst = worstDifference(emb, fx.records.map(\.embedding))
                XCTAssertLessThanOrEqual(worst.diff, 1e-5,
                    "threads \(threads), \(label): max |Δ| \(worst.diff) at record \(worst.record) (\(fx.records[max(0, worst.record)].ids.count) tokens), element \(worst.index)")
                print("paraphrase-MiniLM-L3-v2 parity (\(threads) threads, from \(label)): max |Δ| = \(worst.diff) over \(fx.records.count) texts")
            }
        }
    }
}
