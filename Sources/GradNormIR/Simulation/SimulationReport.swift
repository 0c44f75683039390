import Foundation

/// Tables, JSON and a line plot of an evolving-corpus simulation.
public enum SimulationReport {
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
        var sessions = MarkdownTable(["session", "arriving", "docs (total)", "queries", "upper bound"] + names.map { "\($0) %" })
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
            sessions.add(cells)
        }
        var totals = MarkdownTable(["strategy", "updates", "mean recall % of bound (S2–S\(results.count))",
                                    "mean Recall@\(config.k)", "final Recall@\(config.k)", "detect + update s", "update steps",
                                    "gain over zero-shot per update (points)"])
        for s in summaries(results) {
            totals.add([s.strategy, "\(s.updates)", String(format: "%.1f", s.meanRecallPercent),
                        String(format: "%.3f", s.meanRecall), String(format: "%.3f", s.finalRecall),
                        String(format: "%.0f", s.seconds), "\(s.steps)",
                        s.gainPerUpdate.map { String(format: "%+.2f", $0) } ?? "–"])
        }
        out += sessions.render(aligned: false) + "\n\n" + totals.render(aligned: false) + "\n"
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
        let names = results.first?.strategies.map(\.strategy) ?? []
        let all = results.flatMap { $0.strategies.map(\.recallPercent) }
        let low = max(0, ((all.min() ?? 0) / 10).rounded(.down) * 10 - (all.min() == 100 ? 10 : 0))
        let first = Double(results.first?.session ?? 1), last = Double(results.last?.session ?? 1)
        var chart = SVGChart(title: "Recall@k as % of the upper bound, per session (dots: updates)",
                             xLabel: "session", yLabel: "recall % of the upper bound", x: first...last, y: low...100)
        for (j, name) in names.enumerated() {
            let colour = SVGChart.palette[j % SVGChart.palette.count]
            let points = results.compactMap { r in r.strategies.first { $0.strategy == name }.map { (Double(r.session), $0) } }
            chart.line(points.map { ($0.0, $0.1.recallPercent) }, color: colour)
            for (x, p) in points where p.updated { chart.point(x, p.recallPercent, color: colour) }
            chart.legend(j, "\(name) (\(points.last?.1.updates ?? 0) upd.)", color: colour)
        }
        return chart.render() + "\n"
    }
}
