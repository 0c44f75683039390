import Foundation
import XCTest
import TestSupport

/// `gradnormir update`: resume after kill -9, refusals and error messages.
final class UpdateCommandTests: XCTestCase {
    var dir: URL!
    let corpus = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path
    let base = ["update", "--batch-size", "4", "--max-length", "40", "--steps", "12", "--save-every", "2",
                "--threads", "1", "--seed", "3"]

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("update-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func summary(_ out: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/update.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Killed at random moments (during model loading, steps, state saves or the final save) and
    /// rerun until it finishes, the update writes exactly the uninterrupted run's model file.
    /// Every other kill waits for a saved state, so the test resumes whatever the machine's speed.
    func testKilledAndResumedUpdateEqualsUninterruptedRun() throws {
        let reference = dir.appendingPathComponent("reference").path
        let r = try CLITests.run(base + ["--corpus", corpus, "--out", reference])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("step 12/12"), r.stderr)
        let expected = try Data(contentsOf: URL(fileURLWithPath: reference + "/model.safetensors"))
        let refSummary = try summary(reference)
        XCTAssertEqual(refSummary["steps"] as? Int, 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: reference + "/.update-state"), "state removed when done")

        // Rerunning a finished update does nothing.
        let again = try CLITests.run(base + ["--corpus", corpus, "--out", reference])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("already holds this update"), again.stderr)

        let out = dir.appendingPathComponent("killed").path
        var rng = TestRNG(seed: 2027)
        var kills = 0, resumed = false
        for attempt in 0..<30 {
            let err = Pipe()
            let p = try CLITests.start(base + ["--corpus", corpus, "--out", out], stderr: err)
            if attempt < 8 {
                let u = (rng.uniform() + 1) / 2
                if attempt % 2 == 0 {
                    // Early: during loading or the first steps.
                    Thread.sleep(forTimeInterval: 0.3 + 1.2 * u)
                } else {
                    // Once a state exists (this run's or an earlier one's): during steps or saves.
                    let deadline = Date().addingTimeInterval(60)
                    while p.isRunning && !FileManager.default.fileExists(atPath: out + "/.update-state/state.safetensors")
                            && Date() < deadline {
                        Thread.sleep(forTimeInterval: 0.02)
                    }
                    Thread.sleep(forTimeInterval: 0.8 * u)
                }
                if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            }
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            if stderr.contains("resuming after step") { resumed = true }
            if p.terminationReason == .exit {
                XCTAssertEqual(p.terminationStatus, 0, stderr)
                break
            }
        }
        XCTAssertGreaterThan(kills, 0, "the test must actually interrupt the run")
        XCTAssertTrue(resumed, "at least one run must resume from a saved state")
        let got = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
        XCTAssertTrue(got == expected, "a killed and resumed update must write exactly the uninterrupted run's parameters")
        XCTAssertEqual(try summary(out)["losses"] as? [Double], refSummary["losses"] as? [Double])
        let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp-") || $0 == ".update-state" }
        XCTAssertEqual(left, [], "no temporary files or state left behind")
    }

    func testBadInputGivesOneLineError() throws {
        let out = dir.appendingPathComponent("out").path
        let file = dir.appendingPathComponent("a-file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let modelLike = dir.appendingPathComponent("some-model").path
        try FileManager.default.createDirectory(atPath: modelLike, withIntermediateDirectories: true)
        try "x".write(toFile: modelLike + "/model.safetensors", atomically: true, encoding: .utf8)
        let empty = dir.appendingPathComponent("empty.jsonl").path
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["update", "--corpus", "/nonexistent/corpus", "--out", out], "/nonexistent/corpus"),
            (["update", "--corpus", empty, "--out", out], "no documents"),
            (["update", "--corpus", corpus, "--out", file], "is a file"),
            (["update", "--corpus", corpus, "--out", out, "--lr=-1"], "learning rate"),
            (["update", "--corpus", corpus, "--out", out, "--batch-size", "1"], "batch size"),
            (["update", "--corpus", corpus, "--out", out, "--steps", "0"], "steps"),
            (["update", "--corpus", corpus, "--out", out, "--steps", "2", "--epochs", "1"], "not both"),
            (["update", "--corpus", corpus, "--out", out, "--crop-min", "0.7"], "crop"),
            (["update", "--corpus", corpus, "--out", out, "--save-every", "0"], "--save-every"),
            (["update", "--corpus", corpus, "--out", out, "--max-length", "1000"], "max length 1000"),
            (["update", "--corpus", corpus, "--out", TestPaths.defaultModel.path], "the model's own folder"),
            (["update", "--corpus", corpus, "--out", modelLike], "already holds a model"),
            (["update", "--corpus", corpus, "--out", out, "--replay", "/nonexistent/known"], "/nonexistent/known"),
            (["update", "--corpus", corpus, "--out", out, "--replay", empty], "no documents"),
            (["update", "--corpus", corpus, "--out", out, "--replay-share", "0.5"], "--replay-share needs --replay"),
            (["update", "--corpus", corpus, "--out", out, "--replay", corpus, "--replay-share", "1"], "replay share"),
            (["update", "--corpus", corpus, "--out", out, "--replay", corpus, "--replay-share", "1e300"], "replay share"),
            (["update", "--corpus", corpus, "--out", out, "--anchor", "-1"], "anchor"),
        ]
        for (args, message) in cases {
            let r = try CLITests.run(args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): expected '\(message)' in: \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): one line: \(r.stderr)")
        }
        XCTAssertEqual(try CLITests.run(["update", "--corpus", corpus, "--out", out, "--lr", "abc"]).status, 64)
        let badBatching = try CLITests.run(["update", "--corpus", corpus, "--out", out, "--batching", "clusters"])
        XCTAssertEqual(badBatching.status, 64)
        XCTAssertTrue(badBatching.stderr.contains("clusters"), badBatching.stderr)
        XCTAssertEqual(try CLITests.run(["update", "--corpus", corpus, "--out", out, "--positive", "crop"]).status, 64)
    }

    /// A finished update in OUT is not overwritten by a run with other settings unless --restart.
    func testOtherSettingsAreRefusedUnlessRestart() throws {
        let out = dir.appendingPathComponent("out").path
        let short = ["update", "--batch-size", "4", "--max-length", "24", "--steps", "2", "--threads", "1",
                     "--corpus", corpus, "--out", out]
        XCTAssertEqual(try CLITests.run(short).status, 0)
        let other = try CLITests.run(short + ["--lr", "1e-4"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("other settings"), other.stderr)
        let restarted = try CLITests.run(short + ["--lr", "1e-4", "--restart"])
        XCTAssertEqual(restarted.status, 0, restarted.stderr)
        let config = try XCTUnwrap(try summary(out)["config"] as? [String: Any])
        XCTAssertEqual(config["learningRate"] as? Double, 1e-4)
    }
}
