import Foundation
import TransformerLite

// Saving and resuming an update (see `UpdateTrainer`).
extension UpdateTrainer {
    // MARK: Saved state

    /// The JSON part of a saved state.
    struct StateMeta: Codable {
        var format = 1
        var step: Int
        var totalSteps: Int
        var config: UpdateConfig
        var corpusFingerprint: String
        var documents: Int
        var modelFingerprint: String
        var parameterCount: Int
        var losses: [Double]
        var tokens: Int
        var seconds: Double
    }

    struct SavedState {
        let meta: StateMeta
        let parameters: FlatBuffer
        let m: FlatBuffer
        let v: FlatBuffer
    }

    static let stateFileName = "state.safetensors"

    /// Saves parameters, moments, step, settings and fingerprints to `folder/state.safetensors`
    /// (one file: written to a temporary name, fsynced, renamed into place — a kill at any moment
    /// leaves the previous state or the new one, never a mix).
    public func saveState(folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let meta = StateMeta(step: step, totalSteps: totalSteps, config: config, corpusFingerprint: corpusFingerprint,
                             documents: documentCount, modelFingerprint: modelFingerprint,
                             parameterCount: layout.count, losses: losses, tokens: tokens, seconds: seconds)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = String(decoding: try enc.encode(meta), as: UTF8.self)
        let n = layout.count
        try SafeTensorsFile.writeStreaming(
            tensors: [StreamedTensor(name: "parameters", shape: [n], source: .buffer(parameters, 0..<n)),
                      StreamedTensor(name: "adamw.m", shape: [n], source: .buffer(optimizer.m, 0..<n)),
                      StreamedTensor(name: "adamw.v", shape: [n], source: .buffer(optimizer.v, 0..<n))],
            metadata: ["gradnormir.update": json],
            to: URL(fileURLWithPath: folder).appendingPathComponent(Self.stateFileName).path)
    }

    /// Resumes from the state saved in `folder`, or returns nil when there is none. Throws
    /// `.invalidInput` when the saved run had other settings, other documents or another model,
    /// and `.checkpoint` when the state file is damaged.
    public static func resume(folder: String, retriever: Retriever, documents: [String], replay: [String] = [],
                              config: UpdateConfig) throws -> UpdateTrainer? {
        let path = URL(fileURLWithPath: folder).appendingPathComponent(stateFileName).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try SafeTensorsFile(path: path)
        guard let json = file.metadata["gradnormir.update"],
              let meta = try? JSONDecoder().decode(StateMeta.self, from: Data(json.utf8)), meta.format == 1 else {
            throw GradNormIRError.checkpoint(path: path, tensor: nil, reason: "not a gradnormir update state (unreadable metadata)")
        }
        func refuse(_ what: String) -> GradNormIRError {
            .resumeMismatch(path: path, reason: "the saved update was run with \(what)")
        }
        guard meta.config == config else {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            let saved = String(decoding: (try? enc.encode(meta.config)) ?? Data(), as: UTF8.self)
            let now = String(decoding: (try? enc.encode(config)) ?? Data(), as: UTF8.self)
            throw refuse("other settings \(saved); now \(now)")
        }
        let fingerprint = fingerprint(documents: documents, replay: replay)
        guard meta.corpusFingerprint == fingerprint, meta.documents == documents.count else {
            throw refuse("other documents (\(meta.documents) documents, fingerprint \(meta.corpusFingerprint); "
                         + "now \(documents.count), \(fingerprint)): the corpus or the replay documents changed")
        }
        guard meta.modelFingerprint == retriever.fingerprint,
              meta.parameterCount == retriever.checkpoint.layout.count else {
            throw refuse("another model (fingerprint \(meta.modelFingerprint), now \(retriever.fingerprint)): "
                         + "the model's weights, configuration or vocabulary changed")
        }
        let n = meta.parameterCount
        func load(_ name: String) throws -> FlatBuffer {
            guard let info = file.info(name), info.dtype == .F32, info.count == n else {
                throw GradNormIRError.checkpoint(path: path, tensor: name, reason: "missing or not \(n) F32 values")
            }
            let b = FlatBuffer(count: n)
            try b.withUnsafeMutableBufferPointer { try file.copyFloats(name, into: $0) }
            return b
        }
        let state = SavedState(meta: meta, parameters: try load("parameters"), m: try load("adamw.m"), v: try load("adamw.v"))
        let trainer = try UpdateTrainer(retriever: retriever, documents: documents, replay: replay, config: config, state: state)
        guard trainer.totalSteps == meta.totalSteps, meta.step <= meta.totalSteps, meta.losses.count == meta.step else {
            throw GradNormIRError.checkpoint(path: path, tensor: nil, reason: "inconsistent step counts in the saved state")
        }
        return trainer
    }
}
