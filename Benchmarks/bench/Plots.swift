import Foundation
import GradNormIR

/// The bench's three kinds of plot, as SVG files in `folder`.
enum BenchPlots {
    struct CorpusResult { let corpus: String; let threshold: Double; let ood: Double; let recall: Double; let outcomes: [DocumentOutcome] }

    /// Writes, per retriever configuration (`slug` names its files), the score distributions
    /// against the threshold and the ROC curves, and one chart of OOD ratio against recall for all
    /// configurations. Returns the paths written.
    static func write(results: [(retriever: String, slug: String, corpora: [CorpusResult])], folder: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var paths: [String] = []
        func save(_ name: String, _ chart: SVGChart) throws {
            let p = (folder as NSString).appendingPathComponent(name)
            try chart.render().write(toFile: p, atomically: true, encoding: .utf8)
            paths.append(p)
        }
        for (retriever, slug, corpora) in results {
            // Score distributions: one row per corpus, failures in red, the threshold dashed.
            let all = corpora.flatMap { $0.outcomes.map(\.gradNorm) } + corpora.map(\.threshold)
            var dist = SVGChart(title: "GradNormIR scores per corpus — \(retriever)", xLabel: "GradNormIR score (mean record gradient norm)",
                                yLabel: "", x: (all.min() ?? 0)...(all.max() ?? 1), y: -0.5...(Double(corpora.count) - 0.5))
            dist.yCategories = corpora.map(\.corpus)
            for (i, c) in corpora.enumerated() {
                for o in c.outcomes { dist.point(o.gradNorm, Double(i), color: o.failed ? "#d62728" : "#1f77b4") }
            }
            if let t = corpora.first?.threshold {
                dist.line([(t, -0.5), (t, Double(corpora.count) - 0.5)], color: "#444", width: 1.5, dashed: true)
            }
            dist.legend(0, "recall@k < 1", color: "#d62728")
            dist.legend(1, "recall@k = 1", color: "#1f77b4")
            dist.legend(2, "- - threshold", color: "#444")
            try save("scores-\(slug).svg", dist)
            // ROC curves of the score against recall(d) < 1.
            var roc = SVGChart(title: "ROC of GradNormIR against retrieval failure — \(retriever)", xLabel: "false positive rate",
                               yLabel: "true positive rate", x: 0...1, y: 0...1)
            roc.line([(0, 0), (1, 1)], color: "#bbb", width: 1, dashed: true)
            var row = 0
            for (i, c) in corpora.enumerated() {
                let pos = c.outcomes.filter(\.failed).count, neg = c.outcomes.count - pos
                guard pos > 0, neg > 0 else { continue }
                var pts: [(Double, Double)] = [(0, 0)]
                var tp = 0, fp = 0
                for o in c.outcomes.sorted(by: { $0.gradNorm > $1.gradNorm }) {
                    if o.failed { tp += 1 } else { fp += 1 }
                    pts.append((Double(fp) / Double(neg), Double(tp) / Double(pos)))
                }
                let color = SVGChart.palette[i % SVGChart.palette.count]
                roc.line(pts, color: color)
                roc.legend(row, c.corpus, color: color)
                row += 1
            }
            try save("roc-\(slug).svg", roc)
        }
        // OOD ratio against actual recall, one colour per retriever.
        var scatter = SVGChart(title: "Corpus OOD ratio against the retriever's recall", xLabel: "recall@k over the corpus",
                               yLabel: "OOD ratio", x: 0...1, y: 0...1)
        for (i, r) in results.enumerated() {
            let color = SVGChart.palette[i % SVGChart.palette.count]
            for c in r.corpora {
                scatter.point(c.recall, c.ood, color: color, radius: 5)
                scatter.text(c.recall, c.ood, c.corpus, color: color, dx: 7, dy: -5)
            }
            scatter.legend(i, r.retriever, color: color)
        }
        try save("ood-vs-recall.svg", scatter)
        return paths
    }
}
