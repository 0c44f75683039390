import Foundation

/// Shard K of N of a run's documents: of the documents the run would score (after its selection,
/// in corpus order), those at positions i with i mod N = K − 1. N independent shards cover every
/// document exactly once, each against the whole corpus's index, and their lines interleaved in
/// turn (shard 1's first, shard 2's first, …) are a single run's file in its order (`ShardMerge`).
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    /// 1-based.
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 1, index <= count else {
            throw GradNormIRError.invalidSetting(name: "shard", reason: "must be K/N with 1 ≤ K ≤ N (got \(index)/\(count))")
        }
        self.index = index
        self.count = count
    }

    /// Parses `K/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw GradNormIRError.invalidSetting(name: "shard", reason: "must be K/N, e.g. 2/8 (got '\(text)')")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// This shard's part of `chosen` (the run's documents, in order).
    public func part<T>(of chosen: [T]) -> [T] {
        stride(from: index - 1, to: chosen.count, by: count).map { chosen[$0] }
    }

    /// How many of `selected` documents fall in this shard.
    public func size(selected: Int) -> Int { selected >= index ? (selected - index) / count + 1 : 0 }
}

/// Joins the files of N shards of one `score` or `predict` run into the file a single run writes:
/// the same lines in the same order, and the same settings file.
public enum ShardMerge {
    /// Checks the shard files and writes the merged file and its settings to `out`. Refused, with
    /// a message naming the shard: a file without shard settings, shards of different runs
    /// (settings, fingerprints or N differ), a shard missing or given twice, an unfinished shard,
    /// a document in two shards. An existing `out` with other content is refused; one with the
    /// same content is left as it is (returns false).
    @discardableResult
    public static func merge(shards paths: [String], out: String) throws -> Bool {
        guard !paths.isEmpty else { throw GradNormIRError.invalidInput("no shard files to merge") }
        var parts: [(path: String, shard: Shard, settings: ScoreSettings)] = []
        for path in paths {
            let metaPath = path + ".meta.json"
            guard FileManager.default.fileExists(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
            guard let text = ScoreFile.recordedSettings(of: path) else {
                throw GradNormIRError.invalidInput("\(path): no settings file \(metaPath); not the output of `score` or `predict`")
            }
            guard let settings = ScoreSettings.decode(text), let shardText = settings.shard,
                  let selected = settings.selected else {
                throw GradNormIRError.invalidInput("\(path): not a shard (its settings \(metaPath) record no shard)")
            }
            let shard = try Shard(parsing: shardText)
            guard selected >= 0 else { throw GradNormIRError.invalidInput("\(metaPath): negative document count") }
            parts.append((path, shard, settings))
        }
        let first = parts[0]
        let n = first.shard.count
        for p in parts.dropFirst() {
            guard p.shard.count == n else {
                throw GradNormIRError.invalidInput("\(p.path): shard \(p.shard) of another split than \(first.path) (\(first.shard))")
            }
            var a = p.settings, b = first.settings
            (a.shard, b.shard) = (nil, nil)
            let changed = a.differences(from: b) + (a.selected == b.selected ? [] : ["\(a.selected ?? 0) documents selected, not \(b.selected ?? 0)"])
            guard changed.isEmpty else {
                throw GradNormIRError.invalidInput("\(p.path): not a shard of the same run as \(first.path): " + changed.joined(separator: "; "))
            }
        }
        var byIndex: [Int: (path: String, shard: Shard, settings: ScoreSettings)] = [:]
        for p in parts {
            if let other = byIndex[p.shard.index] {
                throw GradNormIRError.invalidInput("shard \(p.shard) is given twice: \(other.path) and \(p.path)")
            }
            byIndex[p.shard.index] = p
        }
        if let missing = (1...n).first(where: { byIndex[$0] == nil }) {
            throw GradNormIRError.invalidInput("shard \(missing)/\(n) is missing (given: \(parts.map { $0.shard.description }.sorted().joined(separator: ", ")))")
        }
        let selected = first.settings.selected!
        // Each shard's complete lines, checked.
        var lines: [[Data]] = []
        var seen: [String: String] = [:]
        for k in 1...n {
            let p = byIndex[k]!
            let data = try mapFile(p.path)
            guard data.isEmpty || data.last == 0x0A else {
                throw GradNormIRError.invalidInput("\(p.path): the last line is torn: the shard is not finished (rerun it)")
            }
            var rows: [Data] = []
            try JSONLines.forEachLine(in: data) { line, bytes in
                guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                      let id = obj["_id"] as? String else {
                    throw GradNormIRError.malformedJSON(path: p.path, line: line, reason: "not a score or prediction line")
                }
                if let other = seen[id] {
                    throw GradNormIRError.invalidInput("\(p.path):\(line): document '\(id)' is also in \(other)")
                }
                seen[id] = p.path
                rows.append(Data(bytes))
            }
            let expected = p.shard.size(selected: selected)
            guard rows.count == expected else {
                throw GradNormIRError.invalidInput("\(p.path): \(rows.count) of its \(expected) documents: the shard is "
                                                   + (rows.count < expected ? "not finished (rerun it)" : "longer than its run"))
            }
            lines.append(rows)
        }
        var merged = Data()
        for i in 0..<selected {
            merged.append(lines[i % n][i / n])
            merged.append(0x0A)
        }
        var settings = first.settings
        settings.shard = nil
        settings.selected = nil
        let meta = Data(settings.json.utf8)
        let lock = try OutputLock(path: OutputLock.path(forFile: out))
        defer { withExtendedLifetime(lock) {} }
        if let existing = FileManager.default.contents(atPath: out) {
            guard existing == merged, FileManager.default.contents(atPath: out + ".meta.json") == meta else {
                throw GradNormIRError.invalidInput("\(out) exists with other content; refusing to overwrite it (remove it or merge into another file)")
            }
            return false
        }
        try writeFileAtomically(out + ".meta.json", meta)
        try writeFileAtomically(out, merged)
        return true
    }
}
