import Foundation

/// A minimal SVG chart (no plotting dependency): a framed plot area with five ticks per axis (or
/// category labels on y), points, polylines, text and a legend in the right margin — the plots of
/// the bench and of the simulation report.
public struct SVGChart {
    let width = 820.0, height = 440.0
    /// The right margin holds the legend (configuration names run to about 32 characters).
    let left = 80.0, right = 270.0, top = 40.0, bottom = 55.0
    /// Category labels replace the numeric y ticks (row i at y = i).
    public var yCategories: [String]? = nil
    public let title: String, xLabel: String, yLabel: String
    public let xRange: ClosedRange<Double>, yRange: ClosedRange<Double>
    private var body: [String] = []

    public init(title: String, xLabel: String, yLabel: String, x: ClosedRange<Double>, y: ClosedRange<Double>) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
        let pad = { (r: ClosedRange<Double>) in r.lowerBound == r.upperBound ? (r.lowerBound - 1)...(r.upperBound + 1) : r }
        xRange = pad(x); yRange = pad(y)
    }

    public func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * (width - left - right) }
    public func py(_ y: Double) -> Double { height - bottom - (y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * (height - top - bottom) }

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    public mutating func point(_ x: Double, _ y: Double, color: String, radius: Double = 4, filled: Bool = true) {
        body.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%@\" stroke=\"%@\" fill-opacity=\"0.8\"/>",
                           px(x), py(y), radius, filled ? color : "none", color))
    }

    public mutating func line(_ pts: [(Double, Double)], color: String, width w: Double = 2, dashed: Bool = false) {
        let d = pts.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
        body.append("<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(w)\"\(dashed ? " stroke-dasharray=\"6,4\"" : "")/>")
    }

    public mutating func text(_ x: Double, _ y: Double, _ s: String, color: String = "#333", anchor: String = "start", dx: Double = 0, dy: Double = 0) {
        body.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\" text-anchor=\"%@\" font-size=\"12\">%@</text>",
                           px(x) + dx, py(y) + dy, color, anchor, Self.escape(s)))
    }

    /// A legend entry in the right margin (index = row).
    public mutating func legend(_ index: Int, _ label: String, color: String) {
        let y = top + 10 + Double(index) * 18
        body.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>", width - right + 15, y - 10, color))
        body.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#333\">%@</text>", width - right + 32, y, Self.escape(label)))
    }

    public func render() -> String {
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

    public static func tick(_ v: Double) -> String { abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.2g", v) }
}
