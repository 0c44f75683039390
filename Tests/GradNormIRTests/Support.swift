import Foundation
import XCTest
import GradNormIR
import TestSupport

/// The real default retriever, loaded once for all tests of this target; a missing model fails
/// the test with the message of `TestPaths.requireModel()`.
enum SharedModel {
    private static let loaded: Retriever? = try? Retriever.load(folder: TestPaths.defaultModel.path)

    static func retriever() throws -> Retriever {
        _ = try TestPaths.requireModel()
        if let m = loaded { return m }
        return try Retriever.load(folder: TestPaths.defaultModel.path)  // throws the loader's own error
    }
}

/// Decodes `Fixtures/<name>.json` of this test bundle.
func loadJSONFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
                            "missing fixture \(name).json")
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}
