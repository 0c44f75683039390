import Foundation
import TestSupport
import XCTest
@testable import GradNormIR

/// The evolving-corpus simulation: the session plan's contract on synthetic domains, and a small
/// real run whose recall is recomputed independently.
final class SimulationTests: XCTestCase {
    private var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: root)
    }

    /// A BEIR folder `name` with `count` documents; document i has query i (1:1), except that
    /// every fifth document has no query (such documents must never be drawn).
    private func domain(_ name: String, count: Int, words: [String]) throws -> BEIRDataset {
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("qrels"), withIntermediateDirectories: true)
        var corpus = "", queries = "", qrels = "query-id\tcorpus-id\tscore\n"
        for i in 0..<count {
            let w = words[i % words.count]
            corpus += "{\"_id\": \"\(name)-\(i)\", \"title\": \"\", \"text\": \"\(w) \(name) entry \(i) about \(w) things\"}\n"
            queries += "{\"_id\": \"q-\(name)-\(i)\", \"text\": \"\(w) \(i)\"}\n"
            if i % 5 != 4 { qrels += "q-\(name)-\(i)\t\(name)-\(i)\t1\n" }
        }
        try corpus.write(to: dir.appendingPathComponent("corpus.jsonl"), atomically: true, encoding: .utf8)
        try queries.write(to: dir.appendingPathComponent("queries.jsonl"), atomically: true, encoding: .utf8)
        try qrels.write(to: dir.appendingPathComponent("qrels/test.tsv"), atomically: true, encoding: .utf8)
        return try BEIRDataset.load(folder: dir.path)
    }

    private func domains(_ n: Int = 40) throws -> [String: BEIRDataset] {
        [
            "faq": try domain("faq", count: n, words: ["python", "list", "loop", "import"]),
            "old": try domain("old", count: n, words: ["stone", "river", "king", "bread"]),
            "alpha": try domain("alpha", count: n, words: ["atom", "proton", "orbit"]),
            "beta": try domain("beta", count: n, words: ["verb", "noun", "poem"]),
        ]
    }

    private func config(sessions: Int = 6, perSession: Int = 10, seed: UInt64 = 3) -> SimulationConfig {
        var c = SimulationConfig()
        c.sessions = sessions
        c.documentsPerSession = perSession
        c.familiar = ["faq", "old"]
        c.arriving = ["alpha", "beta"]
        c.arrivalSessions = [2, 4]
        c.seed = seed
        return c
    }

    func testPlanFollowsTheDocumentedOrder() throws {
        let data = try domains()
        let c = config()
        let plan = try EvolvingCorpusSimulation.plan(datasets: data, config: c)
        XCTAssertEqual(plan.map(\.number), Array(1...6))
        XCTAssertEqual(Set(c.arrivalOrder), ["alpha", "beta"])
        // S1: only the familiar domains, evenly.
        XCTAssertEqual(plan[0].arriving, nil)
        let s1 = Dictionary(grouping: plan[0].documents, by: \.domain).mapValues(\.count)
        XCTAssertEqual(s1, ["faq": 5, "old": 5])
        // Arrivals: 75% (rounded) of the session from the arriving domain, the rest from seen ones.
        for (session, new) in zip([2, 4], c.arrivalOrder) {
            let s = plan[session - 1]
            XCTAssertEqual(s.arriving, new)
            XCTAssertEqual(s.documents.count, 10)
            XCTAssertEqual(s.documents.filter { $0.domain == new }.count, 8)
        }
        // A domain never appears before it arrives; other sessions bring only seen domains.
        var seen: Set<String> = ["faq", "old"]
        for s in plan {
            if let a = s.arriving { seen.insert(a) }
            for d in s.documents { XCTAssertTrue(seen.contains(d.domain), "S\(s.number): \(d.domain) before it arrived") }
        }
        // No document twice; never one without a relevant query.
        let all = plan.flatMap(\.documents)
        XCTAssertEqual(Set(all.map { "\($0.domain)/\($0.index)" }).count, all.count)
        for d in all { XCTAssertNotEqual(d.index % 5, 4, "drew \(d.domain)-\(d.index), which has no query") }
    }

    func testPlanIsSeeded() throws {
        let data = try domains()
        let a = try EvolvingCorpusSimulation.plan(datasets: data, config: config(seed: 3))
        let b = try EvolvingCorpusSimulation.plan(datasets: data, config: config(seed: 3))
        let c = try EvolvingCorpusSimulation.plan(datasets: data, config: config(seed: 4))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testPlanRejectsMissingDomainsAndBadSettings() throws {
        var data = try domains()
        data["beta"] = nil
        XCTAssertThrowsError(try EvolvingCorpusSimulation.plan(datasets: data, config: config())) { e in
            XCTAssertTrue("\(e)".contains("beta"), "\(e)")
        }
        var c = config()
        c.gamma = 1.5
        XCTAssertThrowsError(try c.validate())
        c = config()
        c.sessions = 1
        XCTAssertThrowsError(try c.validate())
    }

    /// Exhausted domains shrink sessions instead of repeating documents; a session left with no
    /// document at all is an error naming it.
    func testSmallDomainsRunOutWithoutRepeats() throws {
        let data = try domains(10)   // 8 usable documents per domain
        let plan = try EvolvingCorpusSimulation.plan(datasets: data, config: config(sessions: 4, perSession: 10))
        XCTAssertEqual(plan.map(\.documents.count), [10, 10, 4, 8])
        let all = plan.flatMap(\.documents)
        XCTAssertEqual(Set(all.map { "\($0.domain)/\($0.index)" }).count, all.count)
        XCTAssertThrowsError(try EvolvingCorpusSimulation.plan(datasets: data, config: config(sessions: 5, perSession: 10))) { e in
            XCTAssertTrue("\(e)".contains("session 5"), "\(e)")
        }
    }

    /// A real run with the zero-shot and kNN strategies: recall is recomputed here by brute force
    /// from the retriever's embeddings, and zero-shot never updates.
    func testZeroShotRecallMatchesABruteForceRecount() throws {
        let model = try SharedModel.retriever()
        let data = try domains(20)
        var c = config(sessions: 3, perSession: 8)
        c.k = 3
        c.scoring.maxLength = 64
        let sim = try EvolvingCorpusSimulation(base: model, datasets: data, config: c)
        let results = try sim.run(strategies: [.zeroShot, .knn])
        XCTAssertEqual(results.count, 3)
        var docs: [(String, Int)] = []
        for (r, s) in zip(results, sim.sessions) {
            docs += s.documents.map { ($0.domain, $0.index) }
            let zero = r.strategies[0]
            XCTAssertEqual(zero.strategy, "zero-shot")
            XCTAssertFalse(zero.updated)
            XCTAssertNil(zero.oodRatio)
            // Brute force: every query of the documents so far against every document so far.
            let texts = docs.map { data[$0.0]!.corpus[$0.1].fullText }
            let e = try model.searchEmbeddings(texts, maxLength: 64)
            var hits = 0.0, n = 0
            for (j, (domain, index)) in docs.enumerated() {
                let d = data[domain]!
                for q in d.relevantQueries(of: d.corpus[index].id) {
                    let qe = try model.searchEmbeddings([d.queries[d.queryIndex[q]!].text], maxLength: 64)[0]
                    let sims = e.map { zip($0, qe).map { Double($0) * Double($1) }.reduce(0, +) }
                    let top = sims.indices.sorted { sims[$0] > sims[$1] }.prefix(3)
                    hits += top.contains(j) ? 1 : 0
                    n += 1
                }
            }
            XCTAssertEqual(r.queries, n)
            XCTAssertEqual(zero.recall, hits / Double(n), accuracy: 1e-9, "S\(r.session)")
            XCTAssertEqual(r.upperBound, r.strategies.map(\.recall).max()!)
            if r.session >= 2 {
                let knn = r.strategies[1]
                XCTAssertNotNil(knn.oodRatio)
                XCTAssertEqual(knn.updated, knn.oodRatio! > c.gamma)
            }
        }
    }
}
