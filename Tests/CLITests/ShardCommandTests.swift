import Foundation
import XCTest
import TestSupport

/// `--shard K/N` on `score`, `predict` and `index`, and `gradnormir merge`.
final class ShardCommandTests: XCTestCase {
    var dir: URL!
    let cli = CLITests.self
    let small = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("shard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    func bytes(_ p: String) -> Data? { FileManager.default.contents(atPath: p) }

    /// N shards merged (in any order) are the single run's file and settings, byte for byte.
    func testScoreAndPredictShardsMergeIntoTheSingleRun() throws {
        let score = ["score", "--corpus", small, "--positives", "3", "--negatives", "2", "--max-length", "64",
                     "--threads", "1", "--sample", "11"]
        XCTAssertEqual(try cli.run(score + ["--out", path("single.jsonl")]).status, 0)
        for k in 1...3 {
            let r = try cli.run(score + ["--out", path("s\(k).jsonl"), "--shard", "\(k)/3"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(try String(contentsOfFile: path("s3.jsonl"), encoding: .utf8).split(separator: "\n").count, 3, "11 = 4 + 4 + 3")
        let m = try cli.run(["merge", "--out", path("merged.jsonl"), path("s2.jsonl"), path("s3.jsonl"), path("s1.jsonl")])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(bytes(path("merged.jsonl")), bytes(path("single.jsonl")))
        XCTAssertEqual(bytes(path("merged.jsonl.meta.json")), bytes(path("single.jsonl.meta.json")))
        let again = try cli.run(["merge", "--out", path("merged.jsonl"), path("s1.jsonl"), path("s2.jsonl"), path("s3.jsonl")])
        XCTAssertEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already holds"), again.stderr)

        // Refusals, each naming the shard.
        func refused(_ files: [String], _ expected: String, out: String = "x.jsonl") throws {
            let r = try cli.run(["merge", "--out", path(out)] + files)
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), "expected '\(expected)' in: \(r.stderr)")
        }
        try refused([path("s1.jsonl"), path("s3.jsonl")], "shard 2/3 is missing")
        try refused([path("s1.jsonl"), path("s1.jsonl"), path("s3.jsonl")], "given twice")
        try refused([path("single.jsonl"), path("s1.jsonl")], "not a shard")
        try "{}\n".write(toFile: path("other.jsonl"), atomically: true, encoding: .utf8)
        try refused([path("s1.jsonl"), path("s2.jsonl"), path("s3.jsonl")], "exists with other content", out: "other.jsonl")
        XCTAssertEqual(try cli.run(score + ["--out", path("o2.jsonl"), "--shard", "2/3", "--seed", "5"]).status, 0)
        try refused([path("s1.jsonl"), path("o2.jsonl"), path("s3.jsonl")], "o2.jsonl: not a shard of the same run")
        // A shard cut short (an interrupted run) is not finished.
        let lines = try String(contentsOfFile: path("s1.jsonl"), encoding: .utf8).split(separator: "\n")
        try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: path("s1.jsonl"), atomically: true, encoding: .utf8)
        try refused([path("s1.jsonl"), path("s2.jsonl"), path("s3.jsonl")], "s1.jsonl: 3 of its 4 documents")

        // predict shards (all documents) merge into predict's single run.
        let predict = ["predict", "--corpus", small, "--max-length", "64", "--threads", "1", "--detector", "combined"]
        XCTAssertEqual(try cli.run(predict + ["--out", path("p.jsonl")]).status, 0)
        for k in 1...2 { XCTAssertEqual(try cli.run(predict + ["--out", path("p\(k).jsonl"), "--shard", "\(k)/2"]).status, 0) }
        XCTAssertEqual(try cli.run(["merge", "--out", path("pm.jsonl"), path("p1.jsonl"), path("p2.jsonl")]).status, 0)
        XCTAssertEqual(bytes(path("pm.jsonl")), bytes(path("p.jsonl")))
        for bad in ["0/3", "4/3", "2", "a/b"] {
            let r = try cli.run(score + ["--out", path("bad.jsonl"), "--shard", bad])
            XCTAssertEqual(r.status, 1, bad)
            XCTAssertTrue(r.stderr.contains("--shard"), r.stderr)
        }
    }

    /// Index shards (chunks of 64 documents, dealt in turn) merge into the single build's folder.
    func testIndexShardsMergeIntoTheSingleIndex() throws {
        var corpus = ""
        for i in 0..<300 { corpus += "{\"_id\": \"d\(i)\", \"text\": \"entry number \(i) of a corpus about \(i % 7) things\"}\n" }
        let file = try CLITests.write(corpus, to: dir, as: "c.jsonl")
        let args = ["index", "--corpus", file, "--max-length", "16", "--threads", "1"]
        XCTAssertEqual(try cli.run(args + ["--out", path("whole")]).status, 0)
        for k in 1...3 { XCTAssertEqual(try cli.run(args + ["--out", path("i\(k)"), "--shard", "\(k)/3"]).status, 0) }
        // A shard is not an index: commands refuse it.
        let use = try cli.run(["predict", "--corpus", file, "--index", path("i1"), "--max-length", "16", "--out", path("p.jsonl")])
        XCTAssertEqual(use.status, 1)
        XCTAssertTrue(use.stderr.contains("shard 1/3 of an index"), use.stderr)
        let m = try cli.run(["merge", "--out", path("merged"), path("i3"), path("i1"), path("i2")])
        XCTAssertEqual(m.status, 0, m.stderr)
        for name in ["embeddings.safetensors", "ids.jsonl", "index.json"] {
            XCTAssertEqual(bytes(path("merged/" + name)), bytes(path("whole/" + name)), name)
        }
        let missing = try cli.run(["merge", "--out", path("m2"), path("i1"), path("i2")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("shard 3/3 of the index is missing"), missing.stderr)
        let whole = try cli.run(["merge", "--out", path("m3"), path("whole"), path("i1")])
        XCTAssertEqual(whole.status, 1)
        XCTAssertTrue(whole.stderr.contains("not a shard"), whole.stderr)
    }
}
