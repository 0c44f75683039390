import Foundation
import XCTest
import TestSupport

/// Overnight runs a user can trust: a resumed output is checked by content (not by path
/// spelling), an output has one writer at a time, decisions never turn missing scores into "keep",
/// and bad arguments are refused before anything is written.
final class TrustworthyRunTests: XCTestCase {
    var dir: URL!
    let cli = CLITests.self

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("trust-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// A copy of the small fixture corpus in `dir/name`, optionally with document `s03`'s text replaced.
    func corpusCopy(_ name: String, editing: Bool = false) throws -> URL {
        let source = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus/corpus.jsonl")
        var text = try String(contentsOf: source, encoding: .utf8)
        if editing {
            text = text.replacingOccurrences(of: "Enzymes are proteins that speed up chemical reactions in the body.",
                                             with: "Enzymes are catalysts made of protein.")
        }
        let folder = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try text.write(to: folder.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        return folder
    }

    /// A model folder of links to the real model's files, with its own pooling files (mean or CLS).
    func linkedModel(pooling: String) throws -> URL {
        let real = try TestPaths.requireModel()
        let folder = dir.appendingPathComponent("model")
        let fm = FileManager.default
        try fm.createDirectory(at: folder.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for name in ["config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json", "sentence_bert_config.json",
                     "special_tokens_map.json", "modules.json"] where !fm.fileExists(atPath: folder.appendingPathComponent(name).path) {
            try fm.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: real.appendingPathComponent(name))
        }
        let cfg = "{\"word_embedding_dimension\": 384, \"pooling_mode_cls_token\": \(pooling == "cls"), "
            + "\"pooling_mode_mean_tokens\": \(pooling == "mean"), \"pooling_mode_max_tokens\": false, "
            + "\"pooling_mode_mean_sqrt_len_tokens\": false}"
        try cfg.write(to: folder.appendingPathComponent("1_Pooling/config.json"), atomically: true, encoding: .utf8)
        return folder
    }

    let scoreArgs = ["score", "--positives", "2", "--negatives", "2", "--max-length", "64", "--limit", "3", "--threads", "1"]

    // MARK: - Resume by content

    func testResumeComparesContentNotPathSpelling() throws {
        let corpus = try corpusCopy("corp")
        let out = dir.appendingPathComponent("s.jsonl").path
        let first = try cli.run(scoreArgs + ["--corpus", corpus.path, "--out", out])
        XCTAssertEqual(first.status, 0, first.stderr)
        let lines = try String(contentsOfFile: out, encoding: .utf8)
        // The same corpus spelled three ways: already complete, nothing rewritten.
        for spelling in [corpus.path + "/", dir.path + "/./corp", corpus.path] {
            let r = try cli.run(scoreArgs + ["--corpus", spelling, "--out", out])
            XCTAssertEqual(r.status, 0, "\(spelling): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("already has all 3 documents"), r.stderr)
        }
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), lines)
        // Same ids, same count, one text edited: refused, naming the corpus.
        _ = try corpusCopy("corp", editing: true)
        let edited = try cli.run(scoreArgs + ["--corpus", corpus.path, "--out", out])
        XCTAssertEqual(edited.status, 1, edited.stderr)
        XCTAssertTrue(edited.stderr.contains("the corpus changed"), edited.stderr)
        XCTAssertEqual(edited.stderr.split(separator: "\n").count, 1, edited.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), lines, "a refused run changes nothing")
    }

    func testResumeRefusesAChangedModelInTheSameFolder() throws {
        let corpus = try corpusCopy("corp")
        let out = dir.appendingPathComponent("s.jsonl").path
        let mean = try linkedModel(pooling: "mean")
        let first = try cli.run(scoreArgs + ["--corpus", corpus.path, "--out", out, "--model", mean.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        _ = try linkedModel(pooling: "cls")  // same folder, other pooling
        let r = try cli.run(scoreArgs + ["--corpus", corpus.path, "--out", out, "--model", mean.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("the model changed"), r.stderr)
    }

    // MARK: - One writer per output

    func testASecondRunOnTheSameOutputIsRefusedWhileTheFirstRuns() throws {
        let corpus = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path
        let out = dir.appendingPathComponent("locked.jsonl").path
        let p = try cli.start(["score", "--corpus", corpus, "--out", out, "--positives", "3", "--max-length", "128",
                               "--threads", "1"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        // Wait until the first run holds its lock (it writes its pid into the lock file).
        let lockFile = out + ".lock"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, p.isRunning,
              (try? String(contentsOfFile: lockFile, encoding: .utf8))?.contains("\(p.processIdentifier)") != true {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertTrue(p.isRunning, "the first run must still be running for the test to mean anything")
        let second = try cli.run(["score", "--corpus", corpus, "--out", out, "--positives", "4", "--max-length", "64"])
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("in use by pid \(p.processIdentifier)"), second.stderr)
    }

    // MARK: - calibrate and detect

    func write(_ name: String, _ text: String) throws -> String { try CLITests.write(text, to: dir, as: name) }

    func scoreLines(_ pairs: [(String, Double?)]) -> String { CLITests.scoreLines(pairs) }

    func testCalibrateNeverOverwritesItsInputOrAForeignFile() throws {
        let ref = try write("ref.jsonl", scoreLines([("a", 1), ("b", 2), ("c", 3)]))
        let corpus = try write("corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"hello\"}\n")
        let same = try cli.run(["calibrate", "--scores", ref, "--out", ref])
        XCTAssertNotEqual(same.status, 0)
        XCTAssertTrue(same.stderr.contains("is the --scores file itself"), same.stderr)
        let foreign = try cli.run(["calibrate", "--scores", ref, "--out", corpus])
        XCTAssertNotEqual(foreign.status, 0)
        XCTAssertTrue(foreign.stderr.contains("not a threshold file"), foreign.stderr)
        XCTAssertEqual(try String(contentsOfFile: corpus, encoding: .utf8), "{\"_id\": \"d1\", \"text\": \"hello\"}\n")
        let thr = dir.appendingPathComponent("t.json").path
        XCTAssertEqual(try cli.run(["calibrate", "--scores", ref, "--out", thr]).status, 0)
        XCTAssertEqual(try cli.run(["calibrate", "--scores", ref, "--out", thr]).status, 0, "a threshold file may be replaced")
        XCTAssertEqual(try cli.run(["calibrate", "--scores", ref, "--out", corpus, "--force"]).status, 0)
    }

    func testDetectNeverTurnsMissingScoresIntoKeep() throws {
        let ref = try write("ref.jsonl", scoreLines([("a", 10), ("b", 12)]))
        let thr = dir.appendingPathComponent("t.json").path
        XCTAssertEqual(try cli.run(["calibrate", "--scores", ref, "--out", thr]).status, 0)
        let allNull = try write("null.jsonl", scoreLines([("x", nil), ("y", nil)]))
        let r1 = try cli.run(["detect", "--scores", allNull, "--threshold", thr])
        XCTAssertEqual(r1.status, 1, r1.stdout)
        XCTAssertTrue(r1.stderr.contains("none of its 2 documents is scored"), r1.stderr)
        let corpus = try write("corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"hello\"}\n")
        let r2 = try cli.run(["detect", "--scores", corpus, "--threshold", thr])
        XCTAssertEqual(r2.status, 1, r2.stdout)
        XCTAssertTrue(r2.stderr.contains("not a score file"), r2.stderr)
        // Half unscored: the ratio is over the scored documents, with a warning.
        let half = try write("half.jsonl", scoreLines([("p", 20), ("q", nil), ("r", 1), ("s", nil)]))
        let r3 = try cli.run(["detect", "--scores", half, "--threshold", thr, "--gamma", "0.4"])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r3.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["scored"] as? Int, 2)
        XCTAssertEqual(obj["unscored_count"] as? Int, 2)
        XCTAssertEqual(obj["ood_ratio"] as? Double, 0.5)
        XCTAssertEqual(obj["decision"] as? String, "update")
        XCTAssertTrue(r3.stderr.contains("2 of 4 documents"), r3.stderr)
        // Score files that cannot be right.
        for (name, text, expected) in [("dup.jsonl", scoreLines([("a", 1), ("a", 2)]), "again (first on line 1)"),
                                       ("neg.jsonl", scoreLines([("a", 1), ("b", -2)]), "non-negative")] {
            let bad = try write(name, text)
            for args in [["detect", "--scores", bad, "--threshold", thr],
                         ["calibrate", "--scores", bad, "--out", dir.appendingPathComponent("x.json").path]] {
                let r = try cli.run(args)
                XCTAssertEqual(r.status, 1, "\(args)")
                XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
            }
        }
    }

    // MARK: - Refused before anything is written

    func testBadArgumentsAreRefusedBeforeAnyOutputExists() throws {
        let corpus = try corpusCopy("corp")
        let out = dir.appendingPathComponent("never.jsonl")
        let cases: [([String], String)] = [
            (["--max-length", "4"], "--max-length must be at least 8"),
            (["--max-length", "600"], "max length 600"),
            (["--positives", "-3"], "--positives must be at least 1"),
            (["--positives", "1000000"], "--positives 1000000"),
            (["--sample", "0"], "--sample must be at least 1"),
            (["--limit", "0"], "--limit must be at least 1"),
            (["--dropout", "-0.5"], "--dropout must be in [0, 1)"),
        ]
        for (extra, expected) in cases {
            let r = try cli.run(["score", "--corpus", corpus.path, "--out", out.path] + extra)
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertTrue(r.stderr.contains(expected), "\(extra): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(extra) left an output behind")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path + ".meta.json"), "\(extra) left a sidecar behind")
        }
        // An update of a one-document corpus creates no output folder.
        let single = try write("one.jsonl", "{\"_id\": \"d1\", \"text\": \"a single document of a few words\"}\n")
        let folder = dir.appendingPathComponent("upd")
        let u = try cli.run(["update", "--corpus", single, "--out", folder.path, "--steps", "1"])
        XCTAssertEqual(u.status, 1, u.stderr)
        XCTAssertTrue(u.stderr.contains("at least two non-empty documents"), u.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.path))
    }

    func testASampleLargerThanTheCorpusIsSaid() throws {
        let corpus = try corpusCopy("corp")
        let out = dir.appendingPathComponent("all.jsonl").path
        let r = try cli.run(["score", "--corpus", corpus.path, "--out", out, "--sample", "1000", "--positives", "2",
                             "--negatives", "2", "--max-length", "32", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("--sample 1000 is not smaller than the corpus: scoring all 30 documents"), r.stderr)
    }

    func testADocumentWithoutContentTokensIsUnscoredWithAReason() throws {
        let source = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus/corpus.jsonl")
        var text = try String(contentsOf: source, encoding: .utf8)
        text = "{\"_id\": \"empty\", \"text\": \"\\u200b\\u200b\\u0007\"}\n" + text
        let corpus = try write("zw.jsonl", text)
        let out = dir.appendingPathComponent("zw-scores.jsonl").path
        let r = try cli.run(scoreArgs + ["--corpus", corpus, "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = try XCTUnwrap(String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").first)
        XCTAssertEqual(String(first), "{\"_id\": \"empty\", \"gradnorm\": null, \"records\": 0, \"loss\": null, "
                       + "\"reason\": \"no content tokens: the text reduces to [CLS] [SEP]\"}")
    }
}
