import Foundation
import XCTest
@testable import GradNormIR
import TestSupport
import TransformerLite

/// Checkpoint loading: the real all-MiniLM-L6-v2 folder, a round trip through the safetensors
/// writer, and one test per malformed input, each built as a tiny checkpoint in a temp folder.
final class CheckpointTests: XCTestCase {
    private var tempDirs: [URL] = []

    override func tearDown() {
        for d in tempDirs { try? FileManager.default.removeItem(at: d) }
        tempDirs.removeAll()
        super.tearDown()
    }

    // MARK: - The real model

    func testLoadsRealMiniLM() throws {
        let folder = try TestPaths.requireModel()
        let ckpt = try Checkpoint.load(folder: folder.path)
        let c = ckpt.config
        XCTAssertEqual(c.numLayers, 6)
        XCTAssertEqual(c.hiddenSize, 384)
        XCTAssertEqual(c.numHeads, 12)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.vocabSize, 30522)
        XCTAssertEqual(c.maxPositions, 512)
        XCTAssertEqual(c.typeVocabSize, 2)
        XCTAssertEqual(c.layerNormEps, 1e-12)
        XCTAssertEqual(c.pooling, .mean)
        XCTAssertTrue(c.normalize)
        XCTAssertEqual(ckpt.maxSeqLength, 256)
        XCTAssertTrue(ckpt.lowercase)
        XCTAssertNil(ckpt.stripAccents)
        XCTAssertTrue(ckpt.vocabFile.hasSuffix("vocab.txt"))
        XCTAssertEqual(ckpt.parameters.count, ckpt.layout.count)
        // 22,565,376 = the F32 tensors of model.safetensors without position_ids and pooler.*.
        XCTAssertEqual(ckpt.layout.count, 22_565_376)

        // Reference values read with the safetensors library:
        //   from safetensors.numpy import load_file
        //   t = load_file("models/all-MiniLM-L6-v2/model.safetensors"); float(t[name][index])
        let spots: [(String, [Int], Float)] = [
            ("embeddings.word_embeddings.weight", [101, 0], -0.01761939749121666),
            ("embeddings.word_embeddings.weight", [30521, 383], 0.004570063669234514),
            ("embeddings.position_embeddings.weight", [5, 7], -0.021448049694299698),
            ("embeddings.LayerNorm.weight", [0], 0.5989283323287964),
            ("encoder.layer.0.attention.self.query.weight", [3, 17], 0.07734128087759018),
            ("encoder.layer.0.attention.self.value.bias", [10], -0.0037447167560458183),
            ("encoder.layer.5.output.dense.weight", [383, 1535], 0.0012321292888373137),
            ("encoder.layer.5.output.LayerNorm.bias", [200], 0.0434981994330883),
        ]
        for (name, index, expected) in spots {
            let slot = try XCTUnwrap(ckpt.layout.slot(named: name), name)
            let flat = index.count == 2 ? index[0] * slot.shape[1] + index[1] : index[0]
            XCTAssertEqual(ckpt.parameters[slot.offset + flat], expected, "\(name)\(index)")
        }
        // The value bias sits 2C after the fused qkv bias.
        XCTAssertEqual(ckpt.parameters[ckpt.layout.layers[0].qkvBias + 2 * 384 + 10], -0.0037447167560458183)
    }

    func testRealFileIntegerTensorCannotBeReadAsFloats() throws {
        let path = try TestPaths.requireModel().appendingPathComponent("model.safetensors").path
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.tensorNames.count, 104)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.info("embeddings.position_ids")?.dtype, .I64)
        XCTAssertEqual(file.info("embeddings.position_ids")?.shape, [1, 512])
        assertError(.checkpoint("model.safetensors", tensor: "embeddings.position_ids"), mentions: ["I64"]) {
            _ = try file.floats("embeddings.position_ids")
        }
    }

    // MARK: - Round trips and accepted variants

    func testRoundTripWriteThenLoad() throws {
        let dir = try makeTinyCheckpoint()
        let ckpt = try Checkpoint.load(folder: dir.path)
        XCTAssertEqual(ckpt.config, Tiny.config)
        XCTAssertEqual(ckpt.layout, ParameterLayout(config: Tiny.config))
        XCTAssertEqual(ckpt.maxSeqLength, 12)
        XCTAssertTrue(ckpt.lowercase)
        XCTAssertNil(ckpt.stripAccents)
        for t in Tiny.tensors() {
            let slot = try XCTUnwrap(ckpt.layout.slot(named: t.name))
            XCTAssertEqual(ckpt.parameters.toArray(slot.offset ..< slot.offset + slot.count), t.data, t.name)
        }
        // And the file itself reads back bit-exactly, metadata included.
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensorNames, Tiny.tensors().map(\.name))
        let word = Tiny.tensors()[0]
        XCTAssertEqual(try file.floats(word.name), word.data)
    }

    func testWriterPadsHeaderToEightBytes() throws {
        let dir = try makeTempDir()
        let path = dir.appendingPathComponent("x.safetensors").path
        for name in ["a", "ab", "abc", "abcd", "a\"b\\c"] {
            try SafeTensorsFile.write(tensors: [(name, [2], [1, 2])], metadata: [:], to: path)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            XCTAssertEqual(n % 8, 0)
            XCTAssertEqual(bytes.count, 8 + n + 8)
            XCTAssertEqual(try SafeTensorsFile(path: path).floats(name), [1, 2])
        }
        assertError(.invalidInput, mentions: ["w"]) {
            try SafeTensorsFile.write(tensors: [("w", [2, 2], [1, 2, 3])], metadata: [:], to: path)
        }
    }

    func testAcceptsBertPrefixGammaBetaAndIgnoredTensors() throws {
        var tensors = Tiny.tensors().map { t -> (name: String, shape: [Int], data: [Float]) in
            var name = "bert." + t.name
            if name.hasSuffix("LayerNorm.weight") { name = String(name.dropLast(6)) + "gamma" }
            if name.hasSuffix("LayerNorm.bias") { name = String(name.dropLast(4)) + "beta" }
            return (name, t.shape, t.data)
        }
        tensors.reverse()  // file order must not matter
        tensors.append(("bert.pooler.dense.weight", [8, 8], [Float](repeating: 0.5, count: 64)))
        tensors.append(("bert.pooler.dense.bias", [8], [Float](repeating: 0.5, count: 8)))
        tensors.append(("cls.predictions.bias", [10], [Float](repeating: .nan, count: 10)))  // ignored, so its NaN too
        let dir = try makeTinyCheckpoint()
        try SafeTensorsFile.write(tensors: tensors, metadata: [:], to: dir.appendingPathComponent("model.safetensors").path)
        // An I64 position_ids tensor, as PyTorch checkpoints carry, is ignored as well.
        try appendPositionIds(dir)
        let ckpt = try Checkpoint.load(folder: dir.path)
        for t in Tiny.tensors() {
            let slot = try XCTUnwrap(ckpt.layout.slot(named: t.name))
            XCTAssertEqual(ckpt.parameters.toArray(slot.offset ..< slot.offset + slot.count), t.data, t.name)
        }
    }

    func testHalfBFloatAndDoubleConvert() throws {
        // F16: 1, -2, 0.5, smallest subnormal 2^-24, +inf; BF16: 1, -3.5; F64: 1.5, 1/3.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x0001, 0x7C00]
        let bf16: [UInt16] = [0x3F80, 0xC060]
        let f64: [Double] = [1.5, 1.0 / 3.0]
        let image = rawSafeTensors([
            ("h", "F16", [5], f16.flatMap { le($0) }),
            ("b", "BF16", [2], bf16.flatMap { le($0) }),
            ("d", "F64", [2], f64.flatMap { le($0.bitPattern) }),
            ("i", "I32", [1], le(UInt32(7))),
        ])
        let file = try SafeTensorsFile(path: "mem.safetensors", bytes: image)
        XCTAssertEqual(try file.floats("h"), [1, -2, 0.5, 0x1p-24, .infinity])
        XCTAssertEqual(try file.floats("b"), [1, -3.5])
        XCTAssertEqual(try file.floats("d"), [1.5, Float(1.0 / 3.0)])
        var out = [Float](repeating: 0, count: 2)
        try out.withUnsafeMutableBufferPointer { try file.copyFloats("b", into: $0) }
        XCTAssertEqual(out, [1, -3.5])
        assertError(.checkpoint("mem.safetensors", tensor: "b"), mentions: ["2", "3"]) {
            var three = [Float](repeating: 0, count: 3)
            try three.withUnsafeMutableBufferPointer { try file.copyFloats("b", into: $0) }
        }
        assertError(.checkpoint("mem.safetensors", tensor: "i"), mentions: ["I32"]) { _ = try file.floats("i") }
        assertError(.checkpoint("mem.safetensors", tensor: "nope"), mentions: ["no such tensor"]) { _ = try file.floats("nope") }
    }

    func testNoModulesJsonMeansMeanPoolingWithoutNormalisation() throws {
        let dir = try makeTinyCheckpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("modules.json"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("sentence_bert_config.json"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("tokenizer_config.json"))
        let ckpt = try Checkpoint.load(folder: dir.path)
        XCTAssertEqual(ckpt.config.pooling, .mean)
        XCTAssertFalse(ckpt.config.normalize)
        XCTAssertNil(ckpt.maxSeqLength)
        XCTAssertTrue(ckpt.lowercase)
    }

    func testClsPoolingWithoutNormalizeAndTokenizerFlags() throws {
        let dir = try makeTinyCheckpoint()
        try writeJSON(dir, "modules.json", [
            ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
            ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
        ])
        try writePooling(dir) { $0["pooling_mode_mean_tokens"] = false; $0["pooling_mode_cls_token"] = true }
        try writeJSON(dir, "tokenizer_config.json", ["do_lower_case": false, "strip_accents": true, "model_max_length": 512])
        let ckpt = try Checkpoint.load(folder: dir.path)
        XCTAssertEqual(ckpt.config.pooling, .cls)
        XCTAssertFalse(ckpt.config.normalize)
        XCTAssertFalse(ckpt.lowercase)
        XCTAssertEqual(ckpt.stripAccents, true)
    }

    func testVocabWithoutFinalNewlineCounts() throws {
        let dir = try makeTinyCheckpoint()
        let text = (0 ..< 10).map { "tok\($0)" }.joined(separator: "\n")
        try Data(text.utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        XCTAssertNoThrow(try Checkpoint.load(folder: dir.path))
    }
}

// MARK: - Tiny checkpoint fixtures

/// vocab 10 (10-line vocab.txt), hidden 8, 2 heads, 1 layer, intermediate 16, 16 positions.
enum Tiny {
    static let config = EncoderConfig(vocabSize: 10, hiddenSize: 8, numLayers: 1, numHeads: 2,
                                      intermediateSize: 16, maxPositions: 16, typeVocabSize: 2,
                                      layerNormEps: 1e-12, pooling: .mean, normalize: true)

    static var configJSON: [String: Any] {
        ["architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
         "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
         "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
         "vocab_size": 10, "position_embedding_type": "absolute", "pad_token_id": 0]
    }

    static let modules: [[String: Any]] = [
        ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
        ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
        ["idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"],
    ]

    static var pooling: [String: Any] {
        ["word_embedding_dimension": 8, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true,
         "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false]
    }

    /// Every layout slot, in layout order, filled with distinct deterministic values.
    static func tensors() -> [(name: String, shape: [Int], data: [Float])] {
        ParameterLayout(config: config).tensors.map { slot in
            (slot.name, slot.shape, (0 ..< slot.count).map { Float(sin(Double(slot.offset + $0) * 0.37)) * 0.1 })
        }
    }

    /// `tensors()` as raw F32 entries, for hand-built files.
    static func rawEntries() -> [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] {
        tensors().map { ($0.name, "F32", $0.shape, $0.data.flatMap { le($0.bitPattern) }) }
    }
}

extension CheckpointTests {
    func makeTempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        tempDirs.append(dir)
        return dir
    }

    /// A complete, valid tiny sentence-transformers folder.
    func makeTinyCheckpoint() throws -> URL {
        let dir = try makeTempDir()
        try writeConfig(dir) { _ in }
        try writeJSON(dir, "modules.json", Tiny.modules)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try writePooling(dir) { _ in }
        try writeJSON(dir, "sentence_bert_config.json", ["max_seq_length": 12, "do_lower_case": false])
        try writeJSON(dir, "tokenizer_config.json", ["do_lower_case": true, "strip_accents": NSNull(), "tokenizer_class": "BertTokenizer"])
        try writeVocab(dir, lines: 10)
        try writeWeights(dir, Tiny.tensors())
        return dir
    }

    func weightsURL(_ dir: URL) -> URL { dir.appendingPathComponent("model.safetensors") }

    func writeWeights(_ dir: URL, _ tensors: [(name: String, shape: [Int], data: [Float])]) throws {
        try SafeTensorsFile.write(tensors: tensors, metadata: ["format": "pt"], to: weightsURL(dir).path)
    }

    func writeJSON(_ dir: URL, _ name: String, _ object: [String: Any]) throws {
        try writeJSONObject(dir, name, object)
    }

    func writeJSON(_ dir: URL, _ name: String, _ array: [[String: Any]]) throws {
        try writeJSONObject(dir, name, array)
    }

    func writeJSONObject(_ dir: URL, _ name: String, _ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: dir.appendingPathComponent(name))
    }

    func writeConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var c = Tiny.configJSON
        edit(&c)
        try writeJSON(dir, "config.json", c)
    }

    func writePooling(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var p = Tiny.pooling
        edit(&p)
        try writeJSON(dir, "1_Pooling/config.json", p)
    }

    func writeVocab(_ dir: URL, lines: Int) throws {
        let text = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##s", "the", "extra"]
            .prefix(lines).map { $0 + "\n" }.joined()
        try Data(text.utf8).write(to: dir.appendingPathComponent("vocab.txt"))
    }

    /// Rewrites model.safetensors with an extra I64 `embeddings.position_ids` (1, 16) tensor.
    func appendPositionIds(_ dir: URL) throws {
        let file = try SafeTensorsFile(path: weightsURL(dir).path)
        var entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = try file.tensorNames.map { name in
            let info = file.info(name)!
            return (name, "F32", info.shape, try file.floats(name).flatMap { le($0.bitPattern) })
        }
        entries.insert(("embeddings.position_ids", "I64", [1, 16], (0 ..< 16).flatMap { le(UInt64($0)) }), at: 0)
        try rawSafeTensors(entries).write(to: weightsURL(dir))
    }

    // MARK: Error assertions

    enum Expected {
        case fileNotFound(String)
        case malformedJSON(String)
        case invalidUTF8(String)
        case checkpoint(String, tensor: String?)
        case tokenizer(String)
        case invalidInput
    }

    /// Asserts that `body` throws the expected `GradNormIRError` case, with a path ending in the
    /// given file name (and the given tensor), and a description that names the file, the tensor
    /// and every string of `mentions`.
    func assertError(_ expected: Expected, mentions: [String] = [],
                     file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected \(expected), but nothing was thrown", file: file, line: line)
        } catch let error as GradNormIRError {
            let text = error.description
            var names = mentions
            switch (expected, error) {
            case let (.fileNotFound(f), .fileNotFound(path)),
                 let (.malformedJSON(f), .malformedJSON(path, _, _)),
                 let (.invalidUTF8(f), .invalidUTF8(path, _)),
                 let (.tokenizer(f), .tokenizer(path, _)):
                XCTAssertTrue(path.hasSuffix("/" + f), "path \(path) should end in \(f)", file: file, line: line)
                names.append(f)
            case let (.checkpoint(f, expectedTensor), .checkpoint(path, tensor, _)):
                XCTAssertTrue(path.hasSuffix("/" + f) || path == f, "path \(path) should end in \(f)", file: file, line: line)
                names.append(f)
                if let t = expectedTensor {
                    XCTAssertEqual(tensor, t, file: file, line: line)
                    names.append(t)
                }
            case (.invalidInput, .invalidInput):
                break
            default:
                XCTFail("expected \(expected), got \(error)", file: file, line: line)
            }
            for s in names {
                XCTAssertTrue(text.contains(s), "'\(text)' should mention '\(s)'", file: file, line: line)
            }
        } catch {
            XCTFail("expected GradNormIRError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }
}

// MARK: - Raw safetensors images

/// Little-endian bytes of an integer.
func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v.littleEndian) { Array($0) }
}

/// A safetensors image with a verbatim header string and data section.
func rawSafeTensors(header: String, data: [UInt8]) -> Data {
    let h = Array(header.utf8)
    return Data(le(UInt64(h.count)) + h + data)
}

/// A safetensors image of `entries`, laid out back to back; `shortenBy4` makes that tensor's
/// `data_offsets` end 4 bytes early (inconsistent with its shape).
func rawSafeTensors(_ entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                            shortenBy4: String? = nil) -> Data {
    var fields: [String] = []
    var data: [UInt8] = []
    for e in entries {
        let begin = data.count
        data += e.bytes
        let end = data.count - (e.name == shortenBy4 ? 4 : 0)
        fields.append("\"\(e.name)\":{\"dtype\":\"\(e.dtype)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(begin),\(end)]}")
    }
    return rawSafeTensors(header: "{" + fields.joined(separator: ",") + "}", data: data)
}
