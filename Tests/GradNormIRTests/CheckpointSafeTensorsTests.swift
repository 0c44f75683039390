import Foundation
import XCTest
@testable import GradNormIR
import TestSupport
import TransformerLite

/// Checkpoint loading, continued: one test per malformed safetensors file, each built as a tiny
/// checkpoint in a temp folder (see `CheckpointTests`).
extension CheckpointTests {
    // MARK: - Malformed safetensors files

    func testMissingWeights() throws {
        let dir = try makeTinyCheckpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        assertError(.fileNotFound("model.safetensors")) { _ = try Checkpoint.load(folder: dir.path) }
        try Data([0]).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        assertError(.checkpoint("model.safetensors", tensor: nil), mentions: ["pytorch_model.bin"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testTruncatedSafetensorsShorterThanLength() throws {
        let dir = try makeTinyCheckpoint()
        try Data([1, 2, 3, 4, 5]).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: nil), mentions: ["truncated"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testTruncatedSafetensorsDataSection() throws {
        let dir = try makeTinyCheckpoint()
        let full = try Data(contentsOf: weightsURL(dir))
        try full.prefix(full.count - 4).write(to: weightsURL(dir))
        // Only the last tensor written runs past the shortened data section.
        assertError(.checkpoint("model.safetensors", tensor: Tiny.tensors().last!.name), mentions: ["data_offsets"]) {
            _ = try Checkpoint.load(folder: dir.path)
        }
    }

    func testHeaderLengthPastEndOfFile() throws {
        let dir = try makeTinyCheckpoint()
        try (Data(le(UInt64(1000))) + Data("{}      ".utf8)).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: nil), mentions: ["1000", "past the end"]) { _ = try Checkpoint.load(folder: dir.path) }
        // An absurd length (here 2^62) is refused outright, before any arithmetic on it.
        try (Data(le(UInt64(1) << 62)) + Data("{}".utf8)).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: nil), mentions: ["limit"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testHeaderNotJSON() throws {
        let dir = try makeTinyCheckpoint()
        try rawSafeTensors(header: "this is not JSON at all!", data: []).write(to: weightsURL(dir))
        assertError(.malformedJSON("model.safetensors")) { _ = try Checkpoint.load(folder: dir.path) }
        try rawSafeTensors(header: "[1, 2, 3]", data: []).write(to: weightsURL(dir))
        assertError(.malformedJSON("model.safetensors"), mentions: ["JSON object"]) { _ = try Checkpoint.load(folder: dir.path) }
        var bad = Data(le(UInt64(3)))
        bad.append(contentsOf: [0x7B, 0xFF, 0x7D])
        try bad.write(to: weightsURL(dir))
        assertError(.invalidUTF8("model.safetensors")) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testHeaderEntryWithWrongFieldType() throws {
        let dir = try makeTinyCheckpoint()
        let header = #"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#
        try rawSafeTensors(header: header, data: [0, 0, 0, 0]).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: "w"), mentions: ["shape"]) { _ = try Checkpoint.load(folder: dir.path) }
        let negative = #"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#
        try rawSafeTensors(header: negative, data: [0, 0, 0, 0]).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: "w"), mentions: ["negative"]) { _ = try Checkpoint.load(folder: dir.path) }
        let noOffsets = #"{"w": {"dtype": "F32", "shape": [1]}}"#
        try rawSafeTensors(header: noOffsets, data: [0, 0, 0, 0]).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: "w"), mentions: ["data_offsets", "missing"]) { _ = try Checkpoint.load(folder: dir.path) }
        let badMetadata = #"{"__metadata__": {"format": 1}}"#
        try rawSafeTensors(header: badMetadata, data: []).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: nil), mentions: ["__metadata__", "string"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testUnknownDtype() throws {
        let dir = try makeTinyCheckpoint()
        var entries = Tiny.rawEntries()
        entries[3].dtype = "F33"
        try rawSafeTensors(entries).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: entries[3].name), mentions: ["F33"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testIntegerDtypeWhereFloatsAreNeeded() throws {
        let dir = try makeTinyCheckpoint()
        var entries = Tiny.rawEntries()
        entries[4].dtype = "I32"  // same byte count, so the file itself is valid
        try rawSafeTensors(entries).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: entries[4].name), mentions: ["I32"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testDataOffsetsInconsistentWithShape() throws {
        let dir = try makeTinyCheckpoint()
        let entries = Tiny.rawEntries()
        let name = "embeddings.LayerNorm.bias"
        try rawSafeTensors(entries, shortenBy4: name).write(to: weightsURL(dir))
        assertError(.checkpoint("model.safetensors", tensor: name), mentions: ["28", "32"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testMissingTensor() throws {
        let dir = try makeTinyCheckpoint()
        let name = "encoder.layer.0.attention.self.key.bias"
        try writeWeights(dir, Tiny.tensors().filter { $0.name != name })
        assertError(.checkpoint("model.safetensors", tensor: name), mentions: ["missing"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testWrongShape() throws {
        let dir = try makeTinyCheckpoint()
        let name = "embeddings.word_embeddings.weight"
        let tensors = Tiny.tensors().map { $0.name == name ? ($0.name, [8, 10], $0.data) : $0 }
        try writeWeights(dir, tensors)
        assertError(.checkpoint("model.safetensors", tensor: name), mentions: ["[10, 8]", "[8, 10]"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testUnexpectedTensor() throws {
        for extra in ["encoder.layer.1.output.dense.bias", "bert.embeddings.extra.weight", "lm_head.bias"] {
            let dir = try makeTinyCheckpoint()
            try writeWeights(dir, Tiny.tensors() + [(extra, [8], [Float](repeating: 0, count: 8))])
            assertError(.checkpoint("model.safetensors", tensor: extra), mentions: ["unexpected"]) { _ = try Checkpoint.load(folder: dir.path) }
        }
    }

    func testSameTensorTwiceUnderTwoNames() throws {
        let dir = try makeTinyCheckpoint()
        let t = Tiny.tensors()[3]  // embeddings.LayerNorm.weight
        try writeWeights(dir, Tiny.tensors() + [("bert." + t.name, t.shape, t.data)])
        assertError(.checkpoint("model.safetensors", tensor: "bert." + t.name), mentions: ["already"]) { _ = try Checkpoint.load(folder: dir.path) }
    }

    func testNaNAndInfWeightsRejected() throws {
        for bad in [Float.nan, -Float.infinity] {
            let dir = try makeTinyCheckpoint()
            let name = "encoder.layer.0.intermediate.dense.weight"
            let tensors = Tiny.tensors().map { t -> (name: String, shape: [Int], data: [Float]) in
                guard t.name == name else { return t }
                var d = t.data; d[37] = bad
                return (t.name, t.shape, d)
            }
            try writeWeights(dir, tensors)
            assertError(.checkpoint("model.safetensors", tensor: name), mentions: ["element 37"]) { _ = try Checkpoint.load(folder: dir.path) }
        }
    }
}
