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

/// The largest element-wise difference between embeddings and their references, and where it is.
func worstDifference(_ got: [[Float]], _ expected: [[Float]]) -> (diff: Float, record: Int, index: Int) {
    XCTAssertEqual(got.count, expected.count, "one embedding per reference")
    var worst: (diff: Float, record: Int, index: Int) = (0, -1, -1)
    for (k, (g, e)) in zip(got, expected).enumerated() {
        XCTAssertEqual(g.count, e.count, "embedding \(k) has the wrong length")
        for (i, (a, b)) in zip(g, e).enumerated() where abs(a - b) > worst.diff { worst = (abs(a - b), k, i) }
    }
    return worst
}
