import Foundation
import XCTest
@testable import GradNormIR

/// Outputs that cannot be written (a missing folder, a path under /proc): one-line `.io` errors
/// that name the path and the reason, never a raw Cocoa error or a bare "write failed".
final class OutputErrorTests: XCTestCase {
    private var tempDirs: [URL] = []

    override func tearDown() {
        for d in tempDirs { try? FileManager.default.removeItem(at: d) }
        tempDirs.removeAll()
        super.tearDown()
    }

    /// A path inside a folder that does not exist (its parent is a fresh temporary folder).
    private func pathInMissingFolder(_ name: String) throws -> (path: String, folder: String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("output-errors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        tempDirs.append(root)
        let folder = root.appendingPathComponent("no-such-folder")
        return (folder.appendingPathComponent(name).path, folder.path)
    }

    /// Asserts that `body` throws `.io` whose path is `path` and whose description names `path`
    /// and every string of `mentions`; returns the description.
    @discardableResult
    private func assertIOError(_ path: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> Void) -> String? {
        do {
            try body()
            XCTFail("expected .io for \(path), but nothing was thrown", file: file, line: line)
        } catch let error as GradNormIRError {
            guard case .io(let p, _) = error else {
                XCTFail("expected .io, got \(error)", file: file, line: line)
                return nil
            }
            let text = error.description
            XCTAssertEqual(p, path, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text, file: file, line: line)
            for s in [path] + mentions {
                XCTAssertTrue(text.contains(s), "'\(text)' should mention '\(s)'", file: file, line: line)
            }
            return text
        } catch {
            XCTFail("expected GradNormIRError.io, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    func testResumableLinesInMissingFolder() throws {
        let (path, folder) = try pathInMissingFolder("scores.jsonl")
        assertIOError(path, mentions: ["the folder \(folder) does not exist"]) {
            _ = try ResumableLines(path: path, metaPath: path + ".meta.json", meta: "{}", mismatch: "other settings")
        }
    }

    func testResumableLinesUnderProc() throws {
        let path = "/proc/gradnormir-test-\(getpid()).jsonl"
        assertIOError(path, mentions: ["cannot write"]) {
            _ = try ResumableLines(path: path, metaPath: path + ".meta.json", meta: "{}", mismatch: "other settings")
        }
    }

    func testResumableLinesOpenFailureSaysWhy() throws {
        // The settings file can be written, but the output itself is a folder: open fails (EISDIR).
        let (path, folder) = try pathInMissingFolder("out")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let meta = folder + "/out.meta.json"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: meta))
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        assertIOError(path, mentions: ["cannot open for writing", String(cString: strerror(EISDIR))]) {
            _ = try ResumableLines(path: path, metaPath: meta, meta: "{}", mismatch: "other settings")
        }
    }

    func testAtomicWritesNameThePathAndTheReason() throws {
        let (path, folder) = try pathInMissingFolder("thresholds.json")
        assertIOError(path, mentions: ["the folder \(folder) does not exist"]) {
            try writeFileAtomically(path, Data("{}".utf8))
        }
        let proc = "/proc/gradnormir-test-\(getpid()).json"
        assertIOError(proc, mentions: ["cannot create", String(cString: strerror(ENOENT))]) {
            try writeFileAtomically(proc, Data("{}".utf8))
        }
    }
}
