import Foundation
import XCTest
import GradNormIR
import TestSupport
@testable import TransformerLite

/// The whole model against PyTorch on the real all-MiniLM-L6-v2 checkpoint, through the fixture
/// written by `scripts/make_encoder_fixture.py` (torch 2.13 CPU, padded batches with a key mask).
final class EncoderParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Record: Decodable { let text: String; let ids: [Int]; let embedding: [Float]; let unnormalized_norm: Float }
        struct Slice: Decodable {
            let record: Int; let tokens: Int; let dims: Int
            let embedding_layer: [[Float]]; let last_layer: [[Float]]
        }
        let max_length: Int
        let records: [Record]
        let hidden_slices: [Slice]
    }

    func loadModel() throws -> Retriever { try SharedModel.retriever() }
    func loadFixture() throws -> Fixture { try loadJSONFixture("encoder_parity", as: Fixture.self) }

    /// Every fixture text: same ids, and every embedding element within 1e-5 of PyTorch's, on 1 and
    /// and on 2 engine threads.
    func testEmbeddingsMatchPyTorch() throws {
        let model = try loadModel()
        let fx = try loadFixture()
        XCTAssertGreaterThanOrEqual(fx.records.count, 50)
        XCTAssertTrue(fx.records.contains { $0.ids.count == fx.max_length }, "fixture must exercise truncation")
        let saved = BLAS.engineThreads
        defer { BLAS.setThreads(saved) }
        for threads in [1, 2] {
            BLAS.setThreads(threads)
            var ids: [[Int]] = []
            for r in fx.records {
                let mine = try model.tokenize(r.text, maxLength: fx.max_length)
                XCTAssertEqual(mine, r.ids, "ids differ for \(r.text.prefix(60).debugDescription)")
                ids.append(r.ids)
            }
            // Mixed lengths in one packed batch, as the scorer uses it.
            let emb = model.embed(ids: ids, batchTokens: 4096)
            let worst = worstDifference(emb, fx.records.map(\.embedding))
            XCTAssertLessThanOrEqual(worst.diff, 1e-5,
                "threads \(threads): max |Δ| \(worst.diff) at record \(worst.record) (\(fx.records[max(0, worst.record)].ids.count) tokens), element \(worst.index)")
            print("parity (\(threads) threads): max |Δ| = \(worst.diff) over \(fx.records.count) texts")
        }
    }

    /// Intermediate states (embedding LayerNorm output, last layer) on the fixture's slices.
    func testHiddenStatesMatchPyTorch() throws {
        let model = try loadModel()
        let fx = try loadFixture()
        XCTAssertFalse(fx.hidden_slices.isEmpty, "fixture must hold hidden-state slices")
        // The embedding layer alone: an encoder with no layers over the model's embedding tensors
        // (they open the layout), whose last hidden states are the embedding LayerNorm output.
        var embeddingConfig = model.config
        embeddingConfig.numLayers = 0
        let embeddingLayout = ParameterLayout(config: embeddingConfig)
        let embeddingOnly = Encoder(layout: embeddingLayout,
                                    parameters: FlatBuffer(model.checkpoint.parameters.toArray(0..<embeddingLayout.count)))
        let C = model.config.hiddenSize
        for s in fx.hidden_slices {
            let r = fx.records[s.record]
            for (enc, expected, label) in [(embeddingOnly, s.embedding_layer, "embedding layer"),
                                           (model.makeEncoder(), s.last_layer, "last layer")] {
                enc.forward(PackedBatch([r.ids]), saveForBackward: false)
                enc.withLastHiddenStates { h in
                    for t in 0..<s.tokens {
                        for i in 0..<s.dims {
                            XCTAssertEqual(h[t * C + i], expected[t][i], accuracy: 2e-5,
                                           "\(label): token \(t) dim \(i) of \(r.text.prefix(30))")
                        }
                    }
                }
            }
        }
    }

    /// The reference values of DATA.md (printed to 6 decimals there).
    func testDataMdReferenceValues() throws {
        let model = try loadModel()
        XCTAssertEqual(try model.tokenize("hello world"), [101, 7592, 2088, 102])
        let fox = "The quick brown fox jumps over the lazy dog."
        XCTAssertEqual(try model.tokenize(fox), [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
        let e = try model.embed(["hello world", fox])
        let expected: [Float] = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362, -0.160303]
        for i in 0..<6 { XCTAssertEqual(e[0][i], expected[i], accuracy: 2e-6) }
        let cos = zip(e[0], e[1]).map(*).reduce(0, +)
        XCTAssertEqual(cos, 0.108609, accuracy: 2e-6)
    }

    func testMaxLengthIsValidated() throws {
        let model = try loadModel()
        XCTAssertThrowsError(try model.embed(["x"], maxLength: 1))
        XCTAssertThrowsError(try model.embed(["x"], maxLength: 513))
        XCTAssertEqual(try model.tokenize(String(repeating: "word ", count: 1000), maxLength: 64).count, 64)
    }
}
