import Foundation

/// Locations the tests read from: the package root and the default model folder that the
/// set-up step (`make setup`) fills. Tests that need the real model fail — never skip — when it
/// is missing, with a message saying how to fetch it.
public enum TestPaths {
    /// The package root, derived from this source file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // root

    /// The real all-MiniLM-L6-v2 folder: `$GRADNORMIR_MODEL` or `models/all-MiniLM-L6-v2`.
    public static var defaultModel: URL {
        if let env = ProcessInfo.processInfo.environment["GRADNORMIR_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return packageRoot.appendingPathComponent("models/all-MiniLM-L6-v2")
    }

    /// The model folder, or a thrown error telling how to get it.
    public static func requireModel() throws -> URL {
        let url = defaultModel
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) else {
            throw MissingModel(path: url.path)
        }
        return url
    }

    public struct MissingModel: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "the real model is missing at \(path): run `make setup` (or set GRADNORMIR_MODEL)"
        }
    }
}
