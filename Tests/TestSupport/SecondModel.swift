import Foundation

/// The second real retriever, paraphrase-MiniLM-L3-v2, which the set-up step (`make setup`)
/// converts from the ONNX file of a PyPI wheel (scripts/convert_onnx_minilm.py). Like the default
/// model, tests that need it fail — never skip — when it is missing.
extension TestPaths {
    /// `$GRADNORMIR_SECOND_MODEL` or `models/paraphrase-MiniLM-L3-v2`.
    public static var secondModel: URL {
        if let env = ProcessInfo.processInfo.environment["GRADNORMIR_SECOND_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return packageRoot.appendingPathComponent("models/paraphrase-MiniLM-L3-v2")
    }

    /// The second model's folder, or a thrown error telling how to get it.
    public static func requireSecondModel() throws -> URL {
        let url = secondModel
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) else {
            throw MissingSecondModel(path: url.path)
        }
        return url
    }

    public struct MissingSecondModel: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "the second model (paraphrase-MiniLM-L3-v2) is missing at \(path): run `make setup` "
                + "without GRADNORMIR_SKIP_SECOND_MODEL=1 (or python3 scripts/convert_onnx_minilm.py), "
                + "or set GRADNORMIR_SECOND_MODEL"
        }
    }
}
