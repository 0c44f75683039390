import Foundation

/// Which documents of a corpus a run scores; the others stay in the index. The chosen documents
/// are always taken in corpus order.
public enum DocumentSelection: Sendable, Equatable {
    case all
    /// The first n documents.
    case first(Int)
    /// A seeded random sample of n documents (`seededSample`).
    case sample(Int, seed: UInt64)
    /// The documents with these ids (read from `source`, whose content fingerprint is kept).
    case ids([String], source: String, fingerprint: String)

    /// How the selection is recorded in a run's settings: `all`, `first N`, `sample N` or
    /// `ids N <fingerprint>` (the ids' content, not the file's path).
    public var recorded: String {
        switch self {
        case .all: return "all"
        case .first(let n): return "first \(n)"
        case .sample(let n, _): return "sample \(n)"
        case .ids(let ids, _, let fingerprint): return "ids \(ids.count) \(fingerprint)"
        }
    }

    /// The chosen documents' positions in `documents`, ascending. An n at least the corpus size
    /// chooses every document; an id that is not in the corpus is an error naming the id file.
    public func indices(in documents: [Document]) throws -> [Int] {
        switch self {
        case .all: return Array(documents.indices)
        case .first(let n): return Array(0..<min(n, documents.count))
        case .sample(let n, let seed): return seededSample(count: documents.count, sample: n, seed: seed)
        case .ids(let ids, let source, _):
            var position: [String: Int] = [:]
            for (i, d) in documents.enumerated() where position[d.id] == nil { position[d.id] = i }
            var chosen: [Int] = []
            chosen.reserveCapacity(ids.count)
            for id in ids {
                guard let i = position[id] else {
                    throw GradNormIRError.invalidInput("\(source): document '\(id)' is not in the corpus")
                }
                chosen.append(i)
            }
            return chosen.sorted()
        }
    }

    /// Reads an id list: one document id per line (surrounding spaces and tabs are removed).
    /// Empty lines, repeated ids, invalid UTF-8 and an empty file are errors naming the line.
    public static func readIds(_ path: String) throws -> DocumentSelection {
        let data = try mapFile(path)
        var ids: [String] = []
        var seen: [String: Int] = [:]
        try JSONLines.forEachLine(in: data) { line, bytes in
            guard let text = String(bytes: bytes, encoding: .utf8) else {
                throw GradNormIRError.invalidUTF8(path: path, line: line)
            }
            let id = text.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            guard !id.isEmpty else {
                throw GradNormIRError.badRecord(path: path, line: line, reason: "empty line; expected one document id per line")
            }
            if let first = seen[id] {
                throw GradNormIRError.badRecord(path: path, line: line, reason: "id '\(id)' again (first on line \(first))")
            }
            seen[id] = line
            ids.append(id)
        }
        guard !ids.isEmpty else { throw GradNormIRError.invalidInput("\(path): no document ids") }
        return .ids(ids, source: path, fingerprint: Fingerprint.of(texts: ids))
    }
}
