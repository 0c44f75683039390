import Foundation

/// Tables, JSON and a line plot of an evolving-corpus simulation.
public enum SimulationReport {
    /// What a resumed run must share with the interrupted one.
    struct RunMeta: Codable {
        let model: String
        let data: String
        let config: SimulationConfig
        let strategies: [String]
    }

    /// Per-strategy totals over sessions 2…n (the sessions where a decision is made).
    public struct Summary: Codable, Sendable {
        public let strategy: String
        public let updates: Int
        /// Mean over S2…Sn of recall as a percentage of the session's upper bound.
        public let meanRecallPercent: Double
        /// Mean raw Recall@k over S2…Sn.
        public let meanRecall: Double
        public let finalRecall: Double
        /// Seconds spent detecting and updating, and optimiser steps, over the whole run.
        public let seconds: Double
        public let steps: Int
        /// (mean recall − zero-shot's mean recall) per update, in recall points (×100); nil
        /// without updates or without a zero-shot run.
        public let gainPerUpdate: Double?
    }

    public static func summaries(_ results: [SessionResult]) -> [Summary] {
        guard let first = results.first else { return [] }
        let decided = results.filter { $0.session >= 2 }
        let rows = decided.isEmpty ? results : decided
        func series(_ name: String) -> [StrategySession] { rows.compactMap { r in r.strategies.first { $0.strategy == name } } }
        let zero = series(UpdateStrategy.zeroShot.rawValue)
        let zeroMean = zero.isEmpty ? nil : zero.map(\.recall).reduce(0, +) / Double(zero.count)
        return first.strategies.map { s0 in
            let xs = series(s0.strategy)
            let last = results.last!.strategies.first { $0.strategy == s0.strategy }!
            let meanRecall = xs.map(\.recall).reduce(0, +) / Double(max(1, xs.count))
            let gain: Double? = (last.updates > 0 && zeroMean != nil)
                ? 100 * (meanRecall - zeroMean!) / Double(last.updates) : nil
            return Summary(strategy: s0.strategy, updates: last.updates,
                           meanRecallPercent: xs.map(\.recallPercent).reduce(0, +) / Double(max(1, xs.count)),
                           meanRecall: meanRecall, finalRecall: last.recall, seconds: last.cumulativeSeconds,
                           steps: last.cumulativeSteps, gainPerUpdate: gain)
        }
    }

    /// The Markdown report: settings, the per-session table, the per-strategy summary.
    public static func markdown(_ results: [SessionResult], config: SimulationConfig, model: String) -> String {
        guard let first = results.first else { return "No session ran.\n" }
        let names = first.strategies.map(\.strategy)
        var out = """
        ## Evolving corpus: update strategies over \(results.count) sessions

        Model \(model); \(config.documentsPerSession) documents per session; S1 = \(config.familiar.joined(separator: " + ")) \
        (in-distribution); arrivals: \(zip(config.arrivalSessions, config.arrivalOrder).map { "S\($0) \($1)" }.joined(separator: ", ")) \
        (\(Int(100 * config.newDomainShare))% of their session); seed \(config.seed).
        Recall@\(config.k) of every query seen so far over every document seen so far, as a percentage of the
        session's upper bound = the best Recall@\(config.k) any compared strategy reached at that session
        (raw upper bound in its column). Triggered strategies update when the new session's OOD ratio > γ = \(config.gamma):
        GradNormIR scores \(config.scoredPerSession) new and \(config.knownSample) known documents (\(config.scoring.positives) positives,
        \(config.scoring.maxLength) tokens) in the index of all documents so far, threshold = mean known score; kNN and
        Mahalanobis fit on half of the known documents (S1's and those the model was updated on), threshold = mean
        score of the other half. An update = \(config.update.epochs) epoch(s) of unsupervised InfoNCE (random 10–50% crop
        → \(config.update.positive == .document ? "document" : "document without the crop"), in-batch negatives, τ \(config.update.temperature), lr \(config.update.learningRate), batch \(config.update.batchSize), \(config.update.batching.rawValue) batches)
        on the new session's documents. ✓ = updated at that session.


        """
        var header = ["session", "arriving", "docs (total)", "queries", "upper bound"]
        header += names.map { "\($0) %" }
        out += "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + String(repeating: "---|", count: header.count) + "\n"
        for r in results {
            var cells = ["S\(r.session)", r.arriving ?? "–", "\(r.documents) (\(r.cumulativeDocuments))", "\(r.queries)",
                         String(format: "%.3f", r.upperBound)]
            for n in names {
                guard let s = r.strategies.first(where: { $0.strategy == n }) else { cells.append("–"); continue }
                var cell = String(format: "%.1f", s.recallPercent)
                if s.updated { cell += " ✓" }
                if let o = s.oodRatio { cell += String(format: " (OOD %.2f)", o) }
                cells.append(cell)
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        out += "\n| strategy | updates | mean recall % of bound (S2–S\(results.count)) | mean Recall@\(config.k) | final Recall@\(config.k) | detect + update s | update steps | gain over zero-shot per update (points) |\n"
        out += "|---|---|---|---|---|---|---|---|\n"
        for s in summaries(results) {
            out += "| \(s.strategy) | \(s.updates) | \(String(format: "%.1f", s.meanRecallPercent)) | "
                + "\(String(format: "%.3f", s.meanRecall)) | \(String(format: "%.3f", s.finalRecall)) | "
                + "\(String(format: "%.0f", s.seconds)) | \(s.steps) | "
                + "\(s.gainPerUpdate.map { String(format: "%+.2f", $0) } ?? "–") |\n"
        }
        return out
    }

    /// Everything as one JSON object: settings, sessions plan, per-session results, summaries.
    public static func json(_ results: [SessionResult], config: SimulationConfig, sessions: [SimulationSession],
                            model: String) throws -> Data {
        struct Payload: Encodable {
            let model: String
            let config: SimulationConfig
            let arrivalOrder: [String]
            let upperBound: String
            let sessions: [SimulationSession]
            let results: [SessionResult]
            let summary: [Summary]
        }
        let p = Payload(model: model, config: config, arrivalOrder: config.arrivalOrder,
                        upperBound: "best Recall@k of the compared strategies at each session",
                        sessions: sessions, results: results, summary: summaries(results))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(p)
    }

    /// A line plot (SVG) of recall as a percentage of the upper bound per session, one line per
    /// strategy, update sessions marked with dots — the layout of the article's figure.
    public static func svg(_ results: [SessionResult]) -> String {
        let w = 760.0, h = 420.0, left = 60.0, right = 200.0, top = 40.0, bottom = 50.0
        let pw = w - left - right, ph = h - top - bottom
        let names = results.first?.strategies.map(\.strategy) ?? []
        let all = results.flatMap { $0.strategies.map(\.recallPercent) }
        let lo = max(0, ((all.min() ?? 0) / 10).rounded(.down) * 10 - (all.min() == 100 ? 10 : 0))
        let hi = 100.0
        let n = max(1, results.count - 1)
        func x(_ i: Int) -> Double { left + pw * Double(i) / Double(n) }
        func y(_ v: Double) -> Double { top + ph * (1 - (v - lo) / max(1e-9, hi - lo)) }
        let colours = ["#444444", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"22\" font-size=\"14\">Recall@k as % of the upper bound, per session (dots: updates)</text>\n"
        var tick = lo
        while tick <= hi + 1e-9 {
            s += "<line x1=\"\(left)\" y1=\"\(y(tick))\" x2=\"\(left + pw)\" y2=\"\(y(tick))\" stroke=\"#e0e0e0\"/>"
            s += "<text x=\"\(left - 8)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(Int(tick))</text>\n"
            tick += (hi - lo) > 30 ? 10 : 5
        }
        for (i, r) in results.enumerated() {
            s += "<text x=\"\(x(i))\" y=\"\(top + ph + 18)\" text-anchor=\"middle\">S\(r.session)</text>\n"
        }
        s += "<line x1=\"\(left)\" y1=\"\(top + ph)\" x2=\"\(left + pw)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
        for (j, name) in names.enumerated() {
            let c = colours[j % colours.count]
            let pts = results.enumerated().compactMap { i, r in
                r.strategies.first { $0.strategy == name }.map { (i, $0) }
            }
            let path = pts.map { "\(x($0.0)),\(y($0.1.recallPercent))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for (i, p) in pts where p.updated {
                s += "<circle cx=\"\(x(i))\" cy=\"\(y(p.recallPercent))\" r=\"4\" fill=\"\(c)\"/>\n"
            }
            let updates = pts.last?.1.updates ?? 0
            s += "<line x1=\"\(left + pw + 15)\" y1=\"\(top + 10 + 20 * Double(j))\" x2=\"\(left + pw + 35)\" y2=\"\(top + 10 + 20 * Double(j))\" stroke=\"\(c)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(left + pw + 40)\" y=\"\(top + 14 + 20 * Double(j))\">\(name) (\(updates) upd.)</text>\n"
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">session</text>\n"
        s += "</svg>\n"
        return s
    }

    /// Loads the domains, runs the simulation and writes its outputs into `out` (sessions.jsonl as each
    /// session finishes; the report, JSON and plot refreshed after every session). Returns the results
    /// and the Markdown report.
    ///
    /// Resumable: `simulate.meta.json` records the settings; a rerun with the same settings goes on
    /// after the last complete line of `sessions.jsonl` (see `EvolvingCorpusSimulation.run`), one
    /// with other settings is refused unless `restart` (which starts over).
    public static func runAndWrite(model: Retriever, config: SimulationConfig, strategies: [UpdateStrategy], data: String,
                                   out: String, restart: Bool = false,
                                   log: @escaping (String) -> Void) throws -> ([SessionResult], String) {
        var datasets: [String: BEIRDataset] = [:]
        for name in Set(config.familiar + config.arrivalOrder) {
            datasets[name] = try BEIRDataset.load(folder: (data as NSString).appendingPathComponent(name))
        }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out, isDirectory: &isDir), !isDir.boolValue {
            throw GradNormIRError.invalidInput("\(out): exists and is not a folder")
        }
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let sim = try EvolvingCorpusSimulation(base: model, datasets: datasets, config: config, log: log)
        log("simulate: arrival order " + zip(config.arrivalSessions, config.arrivalOrder).map { "S\($0) \($1)" }.joined(separator: ", ")
            + "; sessions of " + sim.sessions.map { "\($0.documents.count)" }.joined(separator: "/") + " documents")
        let linesPath = (out as NSString).appendingPathComponent("sessions.jsonl")
        let metaPath = (out as NSString).appendingPathComponent("simulate.meta.json")
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let meta = String(decoding: try enc.encode(RunMeta(model: model.checkpoint.folder, data: data, config: config,
                                                           strategies: strategies.map(\.rawValue))), as: UTF8.self)
        if restart {
            try? fm.removeItem(atPath: linesPath)
            try? fm.removeItem(atPath: metaPath)
        }
        var done: [SessionResult] = []
        let lines = try ResumableLines(
            path: linesPath, metaPath: metaPath, meta: meta,
            mismatch: "\(out) holds a simulation with other settings (see \(metaPath)): "
                + "use --restart to start it over, or another --out"
        ) { lineNumber, line in
            do {
                done.append(try JSONDecoder().decode(SessionResult.self, from: line))
            } catch {
                throw GradNormIRError.invalidInput("\(linesPath):\(lineNumber): not a session result (\(error.localizedDescription)); use --restart")
            }
        }
        let modelName = (model.checkpoint.folder as NSString).lastPathComponent
        func writeReports() throws -> String {
            let md = SimulationReport.markdown(done, config: config, model: modelName)
            try md.write(toFile: (out as NSString).appendingPathComponent("simulate.md"), atomically: true, encoding: .utf8)
            try SimulationReport.json(done, config: config, sessions: sim.sessions, model: model.checkpoint.folder)
                .write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("simulate.json")), options: .atomic)
            try SimulationReport.svg(done).write(toFile: (out as NSString).appendingPathComponent("simulate.svg"),
                                                 atomically: true, encoding: .utf8)
            return md
        }
        if done.count >= sim.sessions.count {
            log("simulate: \(out) already holds all \(done.count) sessions")
            return (done, try writeReports())
        }
        let results = try sim.run(strategies: strategies, resumingFrom: done) { r in
            done.append(r)
            try lines.append(String(decoding: try enc.encode(r), as: UTF8.self))
            _ = try writeReports()
        }
        return (results, try writeReports())
    }
}
