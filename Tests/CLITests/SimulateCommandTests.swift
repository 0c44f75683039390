import Foundation
import XCTest
import TestSupport

/// `gradnormir simulate` on small synthetic domains: its files, its decisions, its errors.
final class SimulateCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("simcli-\(UUID().uuidString)")
        for (name, words) in [("faq", ["python", "list", "loop"]), ("old", ["stone", "river", "bread"]),
                              ("alpha", ["atom", "proton", "orbit"]), ("beta", ["verb", "noun", "poem"])] {
            let d = dir.appendingPathComponent("data/\(name)")
            try FileManager.default.createDirectory(at: d.appendingPathComponent("qrels"), withIntermediateDirectories: true)
            var corpus = "", queries = "", qrels = ""
            for i in 0..<24 {
                let w = words[i % words.count]
                corpus += "{\"_id\": \"\(name)-\(i)\", \"text\": \"\(w) \(name) entry \(i): a note on \(w) and more \(w)\"}\n"
                queries += "{\"_id\": \"q\(i)\", \"text\": \"\(w) \(i)\"}\n"
                qrels += "q\(i)\t\(name)-\(i)\t1\n"
            }
            try corpus.write(to: d.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
            try queries.write(to: d.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
            try qrels.write(to: d.appendingPathComponent("qrels/test.tsv"), atomically: true, encoding: .utf8)
        }
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    private var common: [String] {
        ["simulate", "--data", dir.appendingPathComponent("data").path, "--familiar", "faq,old",
         "--arriving", "alpha,beta", "--arrival-sessions", "2,3", "--max-length", "48"]
    }

    func testSimulationWritesEveryOutputAndFollowsItsRules() throws {
        let out = dir.appendingPathComponent("out")
        let r = try CLITests.run(common + ["--sessions", "3", "--documents-per-session", "8", "--scored", "2",
                                           "--known", "2", "--positives", "2", "--batch-size", "4", "--out", out.path,
                                           "--strategies", "zero-shot,naive,gradnormir,knn", "--batching", "neighbours"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("| S3 |"), r.stdout)
        XCTAssertTrue(r.stdout.contains("neighbours batches"), r.stdout)
        for f in ["sessions.jsonl", "simulate.json", "simulate.md", "simulate.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let lines = try String(contentsOf: out.appendingPathComponent("sessions.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("simulate.json"))) as? [String: Any])
        let update = (json["config"] as? [String: Any])?["update"] as? [String: Any]
        XCTAssertEqual(update?["batching"] as? String, "neighbours")
        let summary = try XCTUnwrap(json["summary"] as? [[String: Any]])
        let updates = Dictionary(uniqueKeysWithValues: summary.map { ($0["strategy"] as! String, $0["updates"] as! Int) })
        XCTAssertEqual(updates["zero-shot"], 0)
        XCTAssertEqual(updates["naive"], 2, "naive updates at every session after S1")
        let results = try XCTUnwrap(json["results"] as? [[String: Any]])
        for session in results {
            let rows = try XCTUnwrap(session["strategies"] as? [[String: Any]])
            let upper = try XCTUnwrap(session["upperBound"] as? Double)
            XCTAssertEqual(upper, rows.map { $0["recall"] as! Double }.max()!, accuracy: 1e-12)
            for row in rows where row["strategy"] as? String == "gradnormir" || row["strategy"] as? String == "knn" {
                if let ratio = row["oodRatio"] as? Double {
                    XCTAssertEqual(row["updated"] as? Bool, ratio > 0.5)
                } else {
                    XCTAssertEqual(session["session"] as? Int, 1)
                }
            }
        }
        let svg = try String(contentsOf: out.appendingPathComponent("simulate.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("polyline"))
    }

    func testBadArgumentsGiveOneLineErrors() throws {
        let cases: [([String], String)] = [
            (["--strategies", "zero-shot,often"], "unknown strategy 'often'"),
            (["--strategies", "naive, naive"], "'naive' is given twice"),
            (["--strategies", " , "], "no value given"),
            (["--gamma", "2"], "--gamma"),
            (["--sessions", "1"], "--sessions"),
            (["--arrival-sessions", "2,x"], "'x' is not a number"),
            (["--familiar", "faq,alpha"], "share a domain"),
            (["--familiar", "faq,missing"], "missing"),
            (["--out", dir.appendingPathComponent("data/faq/corpus.jsonl").path], "not a folder"),
        ]
        for (extra, expected) in cases {
            let r = try CLITests.run(common + extra)
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertTrue(r.stderr.contains(expected), "\(extra): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), "\(extra): \(r.stderr)")
        }
    }

    /// An interrupted run — simulated by keeping the first two finished sessions and half of the
    /// next line, as a kill during the write leaves them — resumes to the uninterrupted run's results.
    func testInterruptedRunResumesToTheSameResults() throws {
        let args = common + ["--sessions", "3", "--documents-per-session", "8", "--scored", "2", "--known", "2",
                             "--positives", "2", "--batch-size", "4", "--strategies", "zero-shot,naive,gradnormir"]
        let whole = dir.appendingPathComponent("whole"), cut = dir.appendingPathComponent("cut")
        let first = try CLITests.run(args + ["--out", whole.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        try FileManager.default.createDirectory(at: cut, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: whole.appendingPathComponent("simulate.meta.json"),
                                         to: cut.appendingPathComponent("simulate.meta.json"))
        let lines = try String(contentsOf: whole.appendingPathComponent("sessions.jsonl"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        try (lines[0] + "\n" + lines[1] + "\n" + lines[2].prefix(lines[2].count / 2)).write(
            to: cut.appendingPathComponent("sessions.jsonl"), atomically: true, encoding: .utf8)

        let resumed = try CLITests.run(args + ["--out", cut.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming after S2"), resumed.stderr)
        // S3 needs the model naive updated at S2: it is retrained, not scored or evaluated again.
        XCTAssertTrue(resumed.stderr.contains("S3: updating base+S2 "), resumed.stderr)
        XCTAssertEqual(try decisions(cut), try decisions(whole))
        let resumedLines = try String(contentsOf: cut.appendingPathComponent("sessions.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(resumedLines.count, 3, "no session lost or written twice")

        let again = try CLITests.run(args + ["--out", cut.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("already holds all 3 sessions"), again.stderr)
        let other = try CLITests.run(args + ["--out", cut.path, "--gamma", "0.3"])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("other settings") && other.stderr.contains("--restart"), other.stderr)
    }

    /// Every decision and figure of a finished run but its timings, session by session.
    private func decisions(_ folder: URL) throws -> [[String]] {
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("simulate.json"))) as? [String: Any])
        return try XCTUnwrap(json["results"] as? [[String: Any]]).flatMap { session in
            (session["strategies"] as! [[String: Any]]).map { row in
                ["\(session["session"]!)", "\(row["strategy"]!)", "\(row["recall"]!)", "\(row["updated"]!)",
                 "\(row["updates"]!)", "\(row["oodRatio"] ?? "none")", "\(row["cumulativeSteps"]!)"]
            }
        }
    }

    /// A domain edited between two runs on the same folder is refused, naming the domain.
    func testAnEditedDomainIsRefusedOnResume() throws {
        let args = common + ["--sessions", "2", "--documents-per-session", "6", "--scored", "2", "--known", "2",
                             "--positives", "2", "--batch-size", "4", "--strategies", "zero-shot,knn", "--threads", "1"]
        let out = dir.appendingPathComponent("run")
        let first = try CLITests.run(args + ["--out", out.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        let file = dir.appendingPathComponent("data/alpha/corpus.jsonl")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "a note on", with: "a remark on").write(to: file, atomically: true, encoding: .utf8)
        let again = try CLITests.run(args + ["--out", out.path])
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("domain 'alpha' changed") && again.stderr.contains("--restart"), again.stderr)
    }

    /// `simulate` killed with SIGKILL at random moments and rerun ends with the uninterrupted run's
    /// sessions: the same decisions and recalls, no session lost or written twice.
    func testKilledRunResumesToTheSameSessions() throws {
        let args = common + ["--sessions", "3", "--documents-per-session", "8", "--scored", "2", "--known", "2",
                             "--positives", "2", "--batch-size", "4", "--strategies", "zero-shot,naive,gradnormir",
                             "--threads", "1"]
        let whole = dir.appendingPathComponent("whole"), killed = dir.appendingPathComponent("killed")
        let first = try CLITests.run(args + ["--out", whole.path])
        XCTAssertEqual(first.status, 0, first.stderr)
        var rng = TestRNG(seed: 2028)
        let (kills, _, status) = try CLITests.killAndRerun(args + ["--out", killed.path], interrupted: 6, maxRuns: 20) { _ in
            0.5 + 2.5 * (rng.uniform() + 1) / 2
        }
        XCTAssertEqual(status, 0)
        XCTAssertGreaterThan(kills, 0, "the test must actually interrupt the run")
        XCTAssertEqual(try decisions(killed), try decisions(whole))
        let lines = try String(contentsOf: killed.appendingPathComponent("sessions.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "no session lost or written twice")
    }
}
