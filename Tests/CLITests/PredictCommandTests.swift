import Foundation
import XCTest
import TestSupport

/// `gradnormir predict`, `select`, and `score --ids`.
final class PredictCommandTests: XCTestCase {
    var dir: URL!
    let cli = CLITests.self
    let small = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("predict-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func lines(_ file: String) throws -> [[String: Any]] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testPredictWritesEveryDocumentAndCalibrateAndDetectReadIt() throws {
        let out = path("p.jsonl")
        let args = ["predict", "--corpus", small, "--out", out, "--max-length", "64", "--threads", "1", "--detector", "combined"]
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try lines(out)
        XCTAssertEqual(rows.count, 30)
        XCTAssertEqual(rows.first?["_id"] as? String, "s00")
        for row in rows {
            XCTAssertEqual(row["detector"] as? String, "combined")
            let p = try XCTUnwrap(row["ood_score"] as? Double)
            XCTAssertTrue(p > 0 && p < 1, "a probability: \(p)")
            for key in ["density", "nearest", "pieces_per_word", "unknown_share", "continuation_share", "pieces"] {
                XCTAssertNotNil(row[key], key)
            }
        }
        // Cut to two lines and half a third (an interrupted run): the rerun completes the same bytes.
        let whole = try String(contentsOfFile: out, encoding: .utf8)
        let kept = whole.split(separator: "\n", omittingEmptySubsequences: false)
        try (kept[0..<2].joined(separator: "\n") + "\n" + kept[2].prefix(20)).write(toFile: out, atomically: true, encoding: .utf8)
        let resumed = try cli.run(args)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming after 2 of 30"), resumed.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), whole)
        // A second run finds the work done; another detector on the same file is refused.
        let again = try cli.run(args)
        XCTAssertTrue(again.stderr.contains("already has all 30 documents"), again.stderr)
        let other = try cli.run(args + ["--detector", "density"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("the detector was 'combined', now 'density'"), other.stderr)
        // The density detector's score is its density signal.
        let dens = path("d.jsonl")
        XCTAssertEqual(try cli.run(["predict", "--corpus", small, "--out", dens, "--max-length", "64", "--detector", "density",
                                     "--threads", "1"]).status, 0)
        for (a, b) in zip(try lines(dens), rows) {
            XCTAssertEqual(a["ood_score"] as? Double, a["density"] as? Double)
            XCTAssertEqual(a["density"] as? Double, b["density"] as? Double)
        }
        // calibrate and detect read prediction files.
        let thr = path("thr.json")
        let c = try cli.run(["calibrate", "--scores", dens, "--out", thr])
        XCTAssertEqual(c.status, 0, c.stderr)
        let d = try cli.run(["detect", "--scores", out, "--threshold", thr])
        XCTAssertEqual(d.status, 0, d.stderr)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(d.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(o["scored"] as? Int, 30)
        XCTAssertEqual(o["regime"] as? String, "different", "a combined file judged by a density threshold")
    }

    func testBaselineDetectorsNeedAReferenceAndBadInputIsRefused() throws {
        let knn = try cli.run(["predict", "--corpus", small, "--out", path("k.jsonl"), "--detector", "knn"])
        XCTAssertEqual(knn.status, 1)
        XCTAssertTrue(knn.stderr.contains("--reference"), knn.stderr)
        let ok = try cli.run(["predict", "--corpus", small, "--out", path("k.jsonl"), "--detector", "knn",
                              "--reference", small + "/corpus.jsonl", "--max-length", "64", "--limit", "5"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let rows = try lines(path("k.jsonl"))
        XCTAssertEqual(rows.count, 5)
        // Each document is in the reference: it finds itself among its 10 neighbours.
        XCTAssertTrue(rows.allSatisfy { ($0["ood_score"] as? Double ?? 9) < 0.9 }, "\(rows)")
        let unknown = try CLITests.write("nope\n", to: dir, as: "ids.txt")
        let u = try cli.run(["predict", "--corpus", small, "--out", path("u.jsonl"), "--ids", unknown])
        XCTAssertEqual(u.status, 1)
        XCTAssertTrue(u.stderr.contains("'nope' is not in the corpus"), u.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("u.jsonl")))
        // GradNormIR needs more documents than positives + negatives; refused before any output exists.
        let few = try cli.run(["predict", "--corpus", small, "--out", path("f.jsonl"), "--positives", "27", "--negatives", "3"])
        XCTAssertEqual(few.status, 1)
        XCTAssertTrue(few.stderr.contains("--positives 27 and --negatives 3 need more than 30 documents"), few.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("f.jsonl")))
        let both = try cli.run(["predict", "--corpus", small, "--out", path("b.jsonl"), "--ids", unknown, "--sample", "3"])
        XCTAssertEqual(both.status, 1)
        let detector = try cli.run(["predict", "--corpus", small, "--out", path("b.jsonl"), "--detector", "magic"])
        XCTAssertEqual(detector.status, 64)
        XCTAssertTrue(detector.stderr.contains("combined"), "names the detectors: \(detector.stderr)")
    }

    /// `--detector gradnormir` gives the scores of `score` on the same documents; `score --ids`
    /// scores the listed documents, the same lines as a run that scores every document.
    func testGradNormDetectorEqualsScoreAndIdsSelectTheirDocuments() throws {
        let ids = try CLITests.write("s07\ns02\n", to: dir, as: "ids.txt")
        let common = ["--corpus", small, "--positives", "3", "--negatives", "2", "--max-length", "64", "--threads", "1"]
        XCTAssertEqual(try cli.run(["score"] + common + ["--out", path("all.jsonl")]).status, 0)
        let r = try cli.run(["score"] + common + ["--out", path("ids.jsonl"), "--ids", ids])
        XCTAssertEqual(r.status, 0, r.stderr)
        let all = try String(contentsOfFile: path("all.jsonl"), encoding: .utf8).split(separator: "\n")
        let some = try String(contentsOfFile: path("ids.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(some, [all[2], all[7]], "corpus order, the same lines")
        let p = try cli.run(["predict", "--detector", "gradnormir"] + common + ["--out", path("g.jsonl"), "--ids", ids])
        XCTAssertEqual(p.status, 0, p.stderr)
        let g = try lines(path("g.jsonl"))
        let s = try lines(path("ids.jsonl"))
        XCTAssertEqual(g.map { $0["ood_score"] as? Double }, s.map { $0["gradnorm"] as? Double })
        XCTAssertEqual(g.map { $0["loss"] as? Double }, s.map { $0["loss"] as? Double })
    }

    func testSelectRanksTwoCandidatesWithComparableThresholds() throws {
        let second = try TestPaths.requireSecondModel().path
        let first = try TestPaths.requireModel().path
        let reference = try CLITests.write(
            try String(contentsOfFile: small + "/corpus.jsonl", encoding: .utf8).split(separator: "\n").prefix(12)
                .joined(separator: "\n") + "\n", to: dir, as: "ref.jsonl")
        let args = ["select", "--corpus", small, "--model", first, "--model", second, "--reference", reference,
                    "--max-length", "64", "--threads", "1", "--detector", "density", "--false-alarm", "0.25"]
        let r = try cli.run(args + ["--out", path("sel")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let candidates = try XCTUnwrap(o["candidates"] as? [[String: Any]])
        XCTAssertEqual(Set(candidates.compactMap { $0["model"] as? String }), [first, second])
        XCTAssertEqual(o["recommended"] as? String, candidates[0]["model"] as? String)
        let ratios = candidates.compactMap { $0["ood_ratio"] as? Double }
        XCTAssertLessThanOrEqual(ratios[0], ratios[1], "best first")
        for c in candidates {
            XCTAssertEqual(c["scored"] as? Int, 30)
            XCTAssertEqual(c["reference_scored"] as? Int, 12)
            // A type-7 quantile at 0.75 of 12 scores leaves 3 above it (ties aside).
            XCTAssertEqual(c["reference_ood_ratio"] as? Double ?? 0, 0.25, accuracy: 0.09)
        }
        XCTAssertTrue(r.stderr.contains("OOD ratio"), r.stderr)
        // The kept predictions make a rerun give the same answer without predicting again.
        let again = try cli.run(args + ["--out", path("sel")])
        XCTAssertEqual(again.stdout, r.stdout)
        XCTAssertFalse(again.stderr.contains("embedding:"), again.stderr)
        let one = try cli.run(["select", "--corpus", small, "--model", first, "--reference", reference])
        XCTAssertEqual(one.status, 1)
        XCTAssertTrue(one.stderr.contains("at least two candidates"), one.stderr)
    }
}
