import Foundation
import XCTest
import TestSupport

/// The `gradnormir` command line, run as a separate process on the real model.
final class CLITests: XCTestCase {
    struct Result { let status: Int32; let stdout: String; let stderr: String }

    var program: URL { Self.program }
    func run(_ args: [String], stdin: Data? = nil) throws -> Result { try Self.run(args, stdin: stdin) }

    /// The built program, next to this test bundle in the products folder.
    /// Looked for beside the test bundle, beside the running test program (both in the products
    /// folder of whatever --scratch-path built them), then in `.build/release`.
    static var program: URL {
        let candidates = [
            Bundle(for: CLITests.self).bundleURL.deletingLastPathComponent(),
            URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent(),
            TestPaths.packageRoot.appendingPathComponent(".build/release"),
        ].map { $0.appendingPathComponent("gradnormir") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates.last!
    }

    /// The program with `args` and the real model, not started.
    static func process(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = program
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["GRADNORMIR_MODEL"] = try TestPaths.requireModel().path
        p.environment = env
        return p
    }

    static func run(_ args: [String], stdin: Data? = nil) throws -> Result {
        let p = try process(args)
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(stdin) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// Starts the program with `args` in the background (the real model, output discarded; standard
    /// error to `stderr` when given), for tests that kill it or run a second one beside it.
    static func start(_ args: [String], stderr: Pipe? = nil) throws -> Process {
        let p = try process(args)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = stderr ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs the program with `args` again and again until a run ends by itself (at most `maxRuns`
    /// runs): each of the first `interrupted` runs still running after `delay(attempt)` seconds
    /// is killed with SIGKILL. Returns the kills, every run's standard error, and the exit status
    /// of the run that ended by itself (nil if none did).
    static func killAndRerun(_ args: [String], interrupted: Int, maxRuns: Int = 40,
                             delay: (Int) -> Double) throws -> (kills: Int, stderr: [String], status: Int32?) {
        var kills = 0
        var errors: [String] = []
        for attempt in 0..<maxRuns {
            let err = Pipe()
            let p = try start(args, stderr: err)
            if attempt < interrupted {
                Thread.sleep(forTimeInterval: delay(attempt))
                if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            }
            errors.append(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            p.waitUntilExit()
            if p.terminationReason == .exit { return (kills, errors, p.terminationStatus) }
        }
        return (kills, errors, nil)
    }

    /// Writes `text` to `dir/name` and returns its path.
    static func write(_ text: String, to dir: URL, as name: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Score-file lines `{"_id", "gradnorm", "records": 1, "loss": 0.1}` for (id, score or nil).
    static func scoreLines(_ pairs: [(String, Double?)]) -> String {
        pairs.map { "{\"_id\": \"\($0.0)\", \"gradnorm\": \($0.1.map { "\($0)" } ?? "null"), \"records\": 1, \"loss\": 0.1}" }
            .joined(separator: "\n") + "\n"
    }

    func jsonLines(_ s: String) throws -> [[String: Any]] {
        try s.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// Every command's help prints, and its discussion reads as prose: no stray line-continuation
    /// backslashes from the source.
    func testEveryHelpPrintsWithoutStrayBackslashes() throws {
        for command in ["tokenize", "embed", "gradnorm", "score", "calibrate", "detect", "evaluate", "recall",
                        "update", "simulate"] {
            let r = try run([command, "--help"])
            XCTAssertEqual(r.status, 0, "\(command): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE: gradnormir \(command)"), "\(command): \(r.stdout)")
            XCTAssertFalse(r.stdout.contains("\\"), "\(command) --help shows a backslash: \(r.stdout)")
        }
    }

    func testTokenizeArguments() throws {
        let r = try run(["tokenize", "hello world", "The quick brown fox jumps over the lazy dog."])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try jsonLines(r.stdout)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(lines[0]["text"] as? String, "hello world")
        XCTAssertEqual(lines[0]["ids"] as? [Int], [101, 7592, 2088, 102])
        XCTAssertEqual(lines[1]["ids"] as? [Int], [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102])
    }

    func testEmbedFromStdinWithBeirLines() throws {
        let input = """
        {"_id": "a", "title": "", "text": "hello world"}
        {"_id": "b", "text": "The quick brown fox jumps over the lazy dog."}

        """
        let r = try run(["embed", "--max-length", "512"], stdin: Data(input.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try jsonLines(r.stdout)
        XCTAssertEqual(lines.map { $0["_id"] as? String }, ["a", "b"])
        let e0 = try XCTUnwrap(lines[0]["embedding"] as? [Double]), e1 = try XCTUnwrap(lines[1]["embedding"] as? [Double])
        XCTAssertEqual(e0.count, 384)
        XCTAssertEqual(e0[0], -0.034477, accuracy: 2e-6)
        XCTAssertEqual(zip(e0, e1).map(*).reduce(0, +), 0.108609, accuracy: 2e-6)
    }

    func testBadInputGivesOneLineErrorAndNonZeroExit() throws {
        let cases: [([String], String?, String)] = [
            (["tokenize"], "{\"text\": \"ok\"}\n{\"text\": oops}\n", "<stdin>:2: malformed JSON"),
            (["tokenize"], "{\"text\": \"ok\"}\n{\"txt\": \"x\"}\n", "<stdin>:2: malformed JSON: missing string field \"text\""),
            (["embed"], "[1, 2]\n", "<stdin>:1: malformed JSON: expected a JSON object"),
            (["embed", ""], nil, "argument 1: empty text"),
            (["embed", "--max-length", "1000", "x"], nil, "max length 1000"),
            (["tokenize", "--model", "/nonexistent/model", "x"], nil, "/nonexistent/model"),
            (["embed", "--threads", "0", "x"], nil, "--threads"),
        ]
        for (args, stdin, expected) in cases {
            let r = try run(args, stdin: stdin.map { Data($0.utf8) })
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): stderr was \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
        }
        // Invalid UTF-8 on line 2.
        var bad = Data("{\"text\": \"ok\"}\n".utf8)
        bad.append(contentsOf: [0x7B, 0x22, 0x74, 0xFF, 0xFE, 0x0A])
        let r = try run(["tokenize"], stdin: bad)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("<stdin>:2: invalid UTF-8"), r.stderr)
    }

    func testGradNormPrintsLossAndNorm() throws {
        let r = try run(["gradnorm", "--query", "how do I reverse a list in python",
                         "--positive", "Use reversed() or slicing with [::-1] to reverse a list.",
                         "--negative", "The capital of France is Paris.", "--negative", "Bananas are yellow.",
                         "--tensor-norms"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try jsonLines(r.stdout).first)
        let loss = try XCTUnwrap(obj["loss"] as? Double), norm = try XCTUnwrap(obj["grad_norm"] as? Double)
        XCTAssertTrue(loss > 0 && loss.isFinite)
        XCTAssertTrue(norm > 0 && norm.isFinite)
        let tensors = try XCTUnwrap(obj["tensor_norms"] as? [String: Double])
        XCTAssertEqual(tensors.count, 100, "every tensor but the position embeddings")
        XCTAssertNil(tensors["embeddings.position_embeddings.weight"])
        // The global norm is the root of the sum of squared tensor norms.
        XCTAssertEqual(tensors.values.map { $0 * $0 }.reduce(0, +).squareRoot(), norm, accuracy: 1e-9 * norm)
    }

    func testGradNormRejectsBadArguments() throws {
        let cases: [([String], String)] = [
            (["gradnorm", "--query", "q", "--positive", "p"], "at least one --negative"),
            (["gradnorm", "--query", "q", "--positive", "p", "--negative", "n", "--temperature", "0"], "--temperature"),
            (["gradnorm", "--query", " ", "--positive", "p", "--negative", "n"], "--query: empty text"),
        ]
        for (args, expected) in cases {
            let r = try run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }
}

/// `gradnormir score` killed with SIGKILL at random moments and rerun ends with exactly the lines
/// of an uninterrupted run.
final class ScoreResumeTests: XCTestCase {
    func testKilledAndResumedRunEqualsUninterruptedRun() throws {
        let cli = CLITests.self
        let corpus = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["score", "--corpus", corpus, "--positives", "3", "--negatives", "2", "--max-length", "64",
                    "--seed", "11", "--threads", "1"]
        let reference = dir.appendingPathComponent("reference.jsonl").path
        let r = try cli.run(args + ["--out", reference])
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try String(contentsOfFile: reference, encoding: .utf8)
        XCTAssertEqual(expected.split(separator: "\n").count, 30)

        let out = dir.appendingPathComponent("killed.jsonl").path
        var rng = TestRNG(seed: 2026)
        // Kill after 0.15–1.2 s (model loading and embedding take part of that), 12 times.
        let (kills, _, status) = try cli.killAndRerun(args + ["--out", out], interrupted: 12) { _ in
            0.15 + 1.05 * (rng.uniform() + 1) / 2
        }
        XCTAssertEqual(status, 0)
        XCTAssertGreaterThan(kills, 0, "the test must actually interrupt the run")
        let got = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertEqual(got, expected, "a killed and resumed run must write exactly the uninterrupted run's lines")
    }
}

/// calibrate → detect → evaluate on hand-made score files and the small fixture corpus.
final class DecisionCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("decide-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String { try CLITests.write(text, to: dir, as: name) }

    func scoreLines(_ pairs: [(String, Double?)]) -> String { CLITests.scoreLines(pairs) }

    func testCalibrateDetectAndDecision() throws {
        let ref = try write("ref.jsonl", scoreLines([("r1", 10), ("r2", 12), ("r3", 14), ("r4", nil)]))
        let thr = dir.appendingPathComponent("thr.json").path
        let c = try CLITests.run(["calibrate", "--scores", ref, "--out", thr])
        XCTAssertEqual(c.status, 0, c.stderr)
        let t = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: thr))) as? [String: Any])
        XCTAssertEqual(t["threshold"] as? Double, 12)
        XCTAssertEqual(t["n"] as? Int, 3)
        XCTAssertEqual(t["unscored"] as? Int, 1)

        let corpus = try write("c.jsonl", scoreLines([("a", 11), ("b", 13), ("c", 20), ("d", nil)]))
        for (gamma, decision) in [(0.6, "update"), (0.7, "keep")] {
            let d = try CLITests.run(["detect", "--scores", corpus, "--threshold", thr, "--gamma", "\(gamma)"])
            XCTAssertEqual(d.status, 0, d.stderr)
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(o["ood"] as? [String], ["b", "c"])
            XCTAssertEqual(o["ood_ratio"] as? Double, 2.0 / 3, "2 of the 3 scored documents (the unscored one left out)")
            XCTAssertEqual(o["scored"] as? Int, 3)
            XCTAssertEqual(o["unscored"] as? [String], ["d"])
            XCTAssertEqual(o["decision"] as? String, decision)
        }
        // Quantile thresholds.
        let q = try CLITests.run(["calibrate", "--scores", ref, "--out", thr, "--use", "q0.5"])
        XCTAssertEqual(q.status, 0, q.stderr)
    }

    func testDecisionCommandsRejectBadInput() throws {
        let bad = try write("bad.jsonl", "{\"_id\": \"a\", \"gradnorm\": 1}\n{\"_id\": \"b\", \"gradnorm\": \"x\"}\n")
        let one = try write("one.jsonl", scoreLines([("a", 1)]))
        let notThreshold = try write("thr.json", "{\"hello\": 1}")
        let cases: [([String], String)] = [
            (["calibrate", "--scores", bad, "--out", dir.appendingPathComponent("t").path], "bad.jsonl:2"),
            (["calibrate", "--scores", one, "--out", dir.appendingPathComponent("t").path], "at least 2 scored"),
            (["calibrate", "--scores", "/nonexistent.jsonl", "--out", "x"], "/nonexistent.jsonl"),
            (["detect", "--scores", one, "--threshold", notThreshold], "not a threshold file"),
            (["detect", "--scores", one, "--threshold", "/nope.json"], "/nope.json"),
        ]
        for (args, expected) in cases {
            let r = try CLITests.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }

    func testEvaluateReportsDetectorsAgainstRealRecall() throws {
        let corpus = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path
        // Hand-made scores for every document (s00 … s29).
        let scores = try write("s.jsonl", scoreLines((0..<30).map { (String(format: "s%02d", $0), Double($0 % 7)) }))
        let r = try CLITests.run(["evaluate", "--dataset", corpus, "--scores", scores, "--k", "1", "--reference", corpus])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(o["documents"] as? Int, 30)
        XCTAssertEqual(o["evaluated"] as? Int, 8, "the 8 documents with a relevant query")
        let names = (o["detectors"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        XCTAssertEqual(names, ["GradNormIR", "knn", "mahalanobis", "ipq", "combined", "density"])
        XCTAssertTrue(r.stderr.contains("| detector | flagged | DRR | AUROC (95% CI) |"), r.stderr)
    }
}

final class RecallCommandTests: XCTestCase {
    let corpus = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path

    func object(_ r: CLITests.Result) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func testRecallAgainstItselfAndSplitsThatPartitionTheQueries() throws {
        let model = try TestPaths.requireModel().path
        let all = try CLITests.run(["recall", "--dataset", corpus, "--k", "1", "--baseline", model])
        XCTAssertEqual(all.status, 0, all.stderr)
        let o = try object(all)
        XCTAssertEqual(o["queries"] as? Int, 8)
        XCTAssertEqual(o["gained"] as? Int, 0)
        XCTAssertEqual(o["lost"] as? Int, 0)
        XCTAssertEqual(o["sign_test_p"] as? Double, 1)
        XCTAssertEqual(o["delta"] as? Double, 0)
        XCTAssertEqual(o["recall"] as? Double, o["baseline_recall"] as? Double)
        XCTAssertTrue(all.stderr.contains("sign test p"), all.stderr)
        var halves = 0
        var weighted = 0.0
        for split in ["dev", "test"] {
            let r = try CLITests.run(["recall", "--dataset", corpus, "--k", "1", "--split", split, "--split-seed", "3"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let h = try object(r)
            XCTAssertEqual(h["split"] as? String, split)
            let n = try XCTUnwrap(h["queries"] as? Int)
            halves += n
            weighted += Double(n) * (try XCTUnwrap(h["recall"] as? Double))
            XCTAssertNil(h["baseline"], "no baseline asked for")
        }
        XCTAssertEqual(halves, 8, "dev and test partition the queries")
        XCTAssertEqual(weighted / 8, try XCTUnwrap(o["recall"] as? Double), accuracy: 1e-12)
    }

    func testRecallRejectsBadInput() throws {
        let cases: [([String], String)] = [
            (["recall", "--dataset", "/nonexistent-dataset"], "/nonexistent-dataset"),
            (["recall", "--dataset", corpus, "--k", "0"], "--k"),
            (["recall", "--dataset", corpus, "--split", "train"], "train"),
            (["recall", "--dataset", corpus, "--baseline", "/no-such-model"], "/no-such-model"),
        ]
        for (args, expected) in cases {
            let r = try CLITests.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }
}
