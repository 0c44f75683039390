import Foundation
import XCTest
import TestSupport

/// `gradnormir index` and the commands that reuse it (`--index`), and `evaluate --per-document`.
final class IndexCommandTests: XCTestCase {
    var dir: URL!
    let cli = CLITests.self
    let small = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testScoreWithAnIndexWritesTheSameLinesAsWithout() throws {
        let index = dir.appendingPathComponent("idx").path
        let built = try cli.run(["index", "--corpus", small, "--out", index, "--max-length", "64", "--threads", "1"])
        XCTAssertEqual(built.status, 0, built.stderr)
        let again = try cli.run(["index", "--corpus", small, "--out", index, "--max-length", "64", "--threads", "1"])
        XCTAssertTrue(again.stderr.contains("already holds the index of these 30 documents"), again.stderr)
        let args = ["score", "--corpus", small, "--positives", "3", "--negatives", "2", "--max-length", "64",
                    "--sample", "6", "--threads", "1"]
        let plain = dir.appendingPathComponent("plain.jsonl").path, reused = dir.appendingPathComponent("reused.jsonl").path
        XCTAssertEqual(try cli.run(args + ["--out", plain]).status, 0)
        let r = try cli.run(args + ["--out", reused, "--index", index])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("embedding:"), "the corpus is not embedded again")
        XCTAssertEqual(try String(contentsOfFile: reused, encoding: .utf8), try String(contentsOfFile: plain, encoding: .utf8))
        // Recomputing the feed-forward activations (--low-memory) writes the same bytes too.
        let lean = dir.appendingPathComponent("lean.jsonl").path
        let l = try cli.run(args + ["--out", lean, "--index", index, "--low-memory"])
        XCTAssertEqual(l.status, 0, l.stderr)
        XCTAssertEqual(try String(contentsOfFile: lean, encoding: .utf8), try String(contentsOfFile: plain, encoding: .utf8))
        // The same index with another length or another corpus is refused, naming what differs.
        let other = try cli.run(["score", "--corpus", small, "--out", dir.appendingPathComponent("x.jsonl").path,
                                 "--max-length", "128", "--index", index])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("built at max length 64, this run uses 128"), other.stderr)
        let corpus = dir.appendingPathComponent("fewer.jsonl").path
        let lines = try String(contentsOfFile: small + "/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(20)
        try (lines.joined(separator: "\n") + "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        let fewer = try cli.run(["score", "--corpus", corpus, "--out", dir.appendingPathComponent("y.jsonl").path,
                                 "--positives", "3", "--negatives", "2", "--max-length", "64", "--index", index])
        XCTAssertEqual(fewer.status, 1)
        XCTAssertTrue(fewer.stderr.contains("another corpus"), fewer.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("y.jsonl").path))
    }

    /// `index` killed with SIGKILL at random moments and rerun ends with the bytes of an
    /// uninterrupted build.
    func testKilledAndResumedIndexEqualsUninterruptedBuild() throws {
        var corpus = ""
        let words = ["river", "stone", "bread", "atom", "verb", "orbit", "noun", "poem"]
        for i in 0..<900 {
            let w = (0..<12).map { words[($0 * 7 + i) % words.count] }.joined(separator: " ")
            corpus += "{\"_id\": \"d\(i)\", \"text\": \"entry \(i): \(w)\"}\n"
        }
        let file = try CLITests.write(corpus, to: dir, as: "big.jsonl")
        let args = ["index", "--corpus", file, "--max-length", "32", "--threads", "1"]
        let whole = dir.appendingPathComponent("whole").path, killed = dir.appendingPathComponent("killed").path
        let r = try cli.run(args + ["--out", whole])
        XCTAssertEqual(r.status, 0, r.stderr)
        var rng = TestRNG(seed: 2029)
        let (kills, errors, status) = try cli.killAndRerun(args + ["--out", killed], interrupted: 8, maxRuns: 30) { _ in
            0.3 + 2.0 * (rng.uniform() + 1) / 2
        }
        XCTAssertEqual(status, 0, errors.last ?? "")
        let resumed = errors.contains { $0.contains("resuming after") }
        XCTAssertGreaterThan(kills, 0, "the test must actually interrupt the build")
        XCTAssertTrue(resumed, "at least one run must resume a partial build")
        for name in ["embeddings.safetensors", "ids.jsonl", "index.json"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: whole + "/" + name))
            let b = try Data(contentsOf: URL(fileURLWithPath: killed + "/" + name))
            XCTAssertTrue(a == b, "\(name) differs from the uninterrupted build's")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed + "/embeddings.partial"))
    }

    func testEvaluateWritesOneLinePerEvaluatedDocument() throws {
        let scores = dir.appendingPathComponent("s.jsonl").path
        XCTAssertEqual(try cli.run(["score", "--corpus", small, "--out", scores, "--positives", "3", "--negatives", "2",
                                    "--max-length", "64", "--limit", "8", "--threads", "1"]).status, 0)
        let index = dir.appendingPathComponent("idx").path
        XCTAssertEqual(try cli.run(["index", "--corpus", small, "--out", index, "--max-length", "64"]).status, 0)
        let perDoc = dir.appendingPathComponent("docs.jsonl").path
        let base = ["evaluate", "--dataset", small, "--scores", scores, "--k", "3", "--max-length", "64"]
        let r = try cli.run(base + ["--per-document", perDoc, "--index", index])
        XCTAssertEqual(r.status, 0, r.stderr)
        let plain = try cli.run(base)
        XCTAssertEqual(r.stdout, plain.stdout, "the index gives the same report")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let lines = try String(contentsOfFile: perDoc, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, report["evaluated"] as? Int)
        for line in lines {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let ranks = try XCTUnwrap(o["ranks"] as? [Any]), queries = try XCTUnwrap(o["queries"] as? [String])
            XCTAssertEqual(ranks.count, queries.count)
            XCTAssertFalse(queries.isEmpty)
            // recall@3 is the share of ranks within 3.
            let within = ranks.compactMap { $0 as? Int }.filter { $0 <= 3 }.count
            XCTAssertEqual(o["recall"] as? Double, Double(within) / Double(ranks.count), "\(line)")
            XCTAssertEqual(o["failed"] as? Bool, within < ranks.count)
            XCTAssertNotNil(o["score"] as? Double)
        }
    }
}
