import Foundation
import XCTest
@testable import GradNormIR
import TestSupport
import TransformerLite

/// Checkpoint loading, continued: one test per malformed folder or JSON file, each built as a
/// tiny checkpoint in a temp folder (see `CheckpointTests`).
extension CheckpointTests {
    // MARK: - Malformed folders and JSON

    func testMissingFolder() throws {
        let dir = try makeTempDir().appendingPathComponent("no-such-model")
        assertError(.fileNotFound("no-such-model")) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testMissingConfig() throws {
        let dir = try makeTinyCheckpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        assertError(.fileNotFound("config.json")) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testBadJSONInConfig() throws {
        let dir = try makeTinyCheckpoint()
        try Data("{\"hidden_size\": 8,".utf8).write(to: dir.appendingPathComponent("config.json"))
        assertError(.malformedJSON("config.json")) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testConfigMissingRequiredKey() throws {
        let dir = try makeTinyCheckpoint()
        try writeConfig(dir) { $0["hidden_size"] = nil }
        assertError(.checkpoint("config.json", tensor: nil), mentions: ["hidden_size"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testConfigWrongType() throws {
        let dir = try makeTinyCheckpoint()
        for bad: Any in ["one", 1.5, true] {
            try writeConfig(dir) { $0["num_hidden_layers"] = bad }
            assertError(.checkpoint("config.json", tensor: nil), mentions: ["num_hidden_layers"]) { _ = try Checkpoint.load(folder: dir.path) }
        }
    }

    func testUnsupportedHiddenAct() throws {
        for act in ["relu", "gelu_new", "gelu_pytorch_tanh"] {
            let dir = try makeTinyCheckpoint()
            try writeConfig(dir) { $0["hidden_act"] = act }
            assertError(.checkpoint("config.json", tensor: nil), mentions: [act, "hidden_act"]) { _ = try Checkpoint.load(folder: dir.path) }
        }
    }

    func testRelativePositionEmbeddingsRejected() throws {
        let dir = try makeTinyCheckpoint()
        try writeConfig(dir) { $0["position_embedding_type"] = "relative_key" }
        assertError(.checkpoint("config.json", tensor: nil), mentions: ["relative_key"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testRobertaRejected() throws {
        for type in ["roberta", "xlm-roberta", "distilbert"] {
            let dir = try makeTinyCheckpoint()
            try writeConfig(dir) { $0["model_type"] = type }
            assertError(.checkpoint("config.json", tensor: nil), mentions: [type, "model_type"]) { _ = try Checkpoint.load(folder: dir.path) }
        }
    }

    func testMissingModelTypeAccepted() throws {
        let dir = try makeTinyCheckpoint()
        try writeConfig(dir) { $0["model_type"] = nil; $0["hidden_act"] = nil; $0["position_embedding_type"] = nil }
        XCTAssertNoThrow(try Checkpoint.load(folder: dir.path))
    }

    func testHiddenNotDivisibleByHeads() throws {
        let dir = try makeTinyCheckpoint()
        try writeConfig(dir) { $0["num_attention_heads"] = 3 }
        assertError(.checkpoint("config.json", tensor: nil), mentions: ["divisible"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testAbsurdSizesRejectedBeforeAllocation() throws {
        let dir = try makeTinyCheckpoint()
        // 2^40 squared overflows Int: the layout would trap, so the config is refused first.
        try writeConfig(dir) { $0["hidden_size"] = 1 << 40 }
        assertError(.checkpoint("config.json", tensor: nil), mentions: ["parameters"]) { _ = try Checkpoint.load(folder: dir.path) }
        try writeConfig(dir) { $0["vocab_size"] = Int.max / 2 }
        assertError(.checkpoint("config.json", tensor: nil), mentions: ["vocab_size", "too large"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testMaxPoolingRejected() throws {
        let dir = try makeTinyCheckpoint()
        try writePooling(dir) { $0["pooling_mode_mean_tokens"] = false; $0["pooling_mode_max_tokens"] = true }
        assertError(.checkpoint("1_Pooling/config.json", tensor: nil), mentions: ["max_tokens"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testSeveralPoolingModesRejected() throws {
        let dir = try makeTinyCheckpoint()
        try writePooling(dir) { $0["pooling_mode_cls_token"] = true }
        assertError(.checkpoint("1_Pooling/config.json", tensor: nil), mentions: ["cls_token", "mean_tokens"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testModulesJsonNotAnArray() throws {
        let dir = try makeTinyCheckpoint()
        try writeJSON(dir, "modules.json", ["type": "sentence_transformers.models.Pooling"])
        assertError(.malformedJSON("modules.json"), mentions: ["JSON array"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testUnsupportedModuleRejected() throws {
        let dir = try makeTinyCheckpoint()
        try writeJSON(dir, "modules.json", Tiny.modules + [
            ["idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"],
        ])
        assertError(.checkpoint("modules.json", tensor: nil), mentions: ["Dense"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testMaxSeqLengthBeyondPositionsRejected() throws {
        let dir = try makeTinyCheckpoint()
        try writeJSON(dir, "sentence_bert_config.json", ["max_seq_length": 17, "do_lower_case": false])
        assertError(.checkpoint("sentence_bert_config.json", tensor: nil), mentions: ["17", "16"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testVocabSizeMismatch() throws {
        let dir = try makeTinyCheckpoint()
        try writeVocab(dir, lines: 9)
        assertError(.tokenizer("vocab.txt"), mentions: ["9", "10"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testMissingVocab() throws {
        let dir = try makeTinyCheckpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("vocab.txt"))
        assertError(.fileNotFound("vocab.txt")) { _ = try Checkpoint.load(folder: dir.path) }
    }

    /// Any file of the checkpoint that is a folder instead: `.io(path, "is a directory, expected a
    /// file")`, never a raw Cocoa error.
    func testCheckpointFileThatIsAFolder() throws {
        for name in ["config.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
                     "tokenizer_config.json", "vocab.txt", "model.safetensors"] {
            let dir = try makeTinyCheckpoint()
            let path = dir.appendingPathComponent(name).path
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            XCTAssertThrowsError(try Checkpoint.load(folder: dir.path), name) { error in
                XCTAssertEqual(error as? GradNormIRError, .io(path: path, reason: "is a directory, expected a file"), name)
            }
            if name == "vocab.txt" {
                XCTAssertThrowsError(try BertTokenizer.load(vocabFile: path)) { error in
                    XCTAssertEqual(error as? GradNormIRError, .io(path: path, reason: "is a directory, expected a file"))
                }
            }
        }
    }
}
