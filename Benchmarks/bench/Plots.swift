import Foundation
import GradNormIR

/// Minimal SVG charts for the bench report (no plotting dependency): axes with ticks, points,
/// polylines, labels.
struct SVGChart {
    let width = 820.0, height = 440.0
    /// The right margin holds the legend (configuration names run to about 32 characters).
    let left = 80.0, right = 270.0, top = 40.0, bottom = 55.0
    /// Category labels replace the numeric y ticks (row i at y = i).
    var yCategories: [String]? = nil
    let title: String, xLabel: String, yLabel: String
    let xRange: ClosedRange<Double>, yRange: ClosedRange<Double>
    private var body: [String] = []

    init(title: String, xLabel: String, yLabel: String, x: ClosedRange<Double>, y: ClosedRange<Double>) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
        let pad = { (r: ClosedRange<Double>) in r.lowerBound == r.upperBound ? (r.lowerBound - 1)...(r.upperBound + 1) : r }
        xRange = pad(x); yRange = pad(y)
    }

    func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * (width - left - right) }
    func py(_ y: Double) -> Double { height - bottom - (y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * (height - top - bottom) }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    mutating func point(_ x: Double, _ y: Double, color: String, radius: Double = 4, filled: Bool = true) {
        body.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%@\" stroke=\"%@\" fill-opacity=\"0.8\"/>",
                           px(x), py(y), radius, filled ? color : "none", color))
    }

    mutating func line(_ pts: [(Double, Double)], color: String, width w: Double = 2, dashed: Bool = false) {
        let d = pts.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
        body.append("<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(w)\"\(dashed ? " stroke-dasharray=\"6,4\"" : "")/>")
    }

    mutating func text(_ x: Double, _ y: Double, _ s: String, color: String = "#333", anchor: String = "start", dx: Double = 0, dy: Double = 0) {
        body.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\" text-anchor=\"%@\" font-size=\"12\">%@</text>",
                           px(x) + dx, py(y) + dy, color, anchor, Self.escape(s)))
    }

    /// A legend entry in the right margin (index = row).
    mutating func legend(_ index: Int, _ label: String, color: String) {
        let y = top + 10 + Double(index) * 18
        body.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>", width - right + 15, y - 10, color))
        body.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#333\">%@</text>", width - right + 32, y, Self.escape(label)))
    }

    func render() -> String {
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(Self.escape(title))</text>"]
        let x0 = px(xRange.lowerBound), x1 = px(xRange.upperBound), y0 = py(yRange.lowerBound), y1 = py(yRange.upperBound)
        out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>", x0, y1, x1 - x0, y0 - y1))
        for i in 0...4 {
            let fx = xRange.lowerBound + Double(i) / 4 * (xRange.upperBound - xRange.lowerBound)
            let fy = yRange.lowerBound + Double(i) / 4 * (yRange.upperBound - yRange.lowerBound)
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">%@</text>", px(fx), y0 + 16, Self.tick(fx)))
            if yCategories == nil {
                out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">%@</text>", x0 - 6, py(fy) + 4, Self.tick(fy)))
            }
        }
        for (i, name) in (yCategories ?? []).enumerated() {
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">%@</text>", x0 - 6, py(Double(i)) + 4, Self.escape(name)))
        }
        out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">%@</text>", (x0 + x1) / 2, height - 14, Self.escape(xLabel)))
        out.append(String(format: "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">%@</text>", (y0 + y1) / 2, Self.escape(yLabel)))
        return (out + body + ["</svg>"]).joined(separator: "\n")
    }

    static func tick(_ v: Double) -> String { abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.2g", v) }
}

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
