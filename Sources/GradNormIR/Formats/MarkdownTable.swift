import Foundation

/// A Markdown table: a header row, a separator row and the rows added. The one table renderer of
/// the library, the command line and the bench.
public struct MarkdownTable: Sendable {
    public let headers: [String]
    public private(set) var rows: [[String]] = []

    public init(_ headers: [String]) { self.headers = headers }

    public mutating func add(_ row: [String]) { rows.append(row) }

    /// The table's lines joined by newlines (no trailing newline). `aligned` pads every cell to
    /// its column's widest (in characters) and draws the separator to match; otherwise cells are
    /// written as they are and the separator is `|---|…`.
    public func render(aligned: Bool = true) -> String {
        guard aligned else {
            let line = { (cells: [String]) in "| " + cells.joined(separator: " | ") + " |" }
            return ([line(headers), "|" + String(repeating: "---|", count: headers.count)] + rows.map(line))
                .joined(separator: "\n")
        }
        var w = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { w[i] = max(w[i], c.count) } }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $0.element.padding(toLength: w[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: " | ") + " |"
        }
        return ([line(headers), "|" + w.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"]
                + rows.map(line)).joined(separator: "\n")
    }
}
