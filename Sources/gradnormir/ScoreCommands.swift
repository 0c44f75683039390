import ArgumentParser
import Foundation
import GradNormIR
import TransformerLite

/// Progress on standard error: a redrawn bar with rate and ETA on a terminal, a plain line every
/// ten seconds otherwise.
struct ProgressReporter {
    let label: String
    let total: Int
    let isTerminal = isatty(STDERR_FILENO) != 0
    let start = Date()
    var lastPrint = Date.distantPast
    var startCount = 0

    init(label: String, total: Int, alreadyDone: Int = 0) {
        self.label = label
        self.total = total
        self.startCount = alreadyDone
    }

    mutating func update(_ done: Int, force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= (isTerminal ? 0.2 : 10) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - startCount) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        let etaText = eta.isFinite ? formatDuration(eta) : "?"
        let rateText = String(format: "%.2f/s", rate)
        if isTerminal {
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)  \(rateText)  ETA \(etaText)   ".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            FileHandle.standardError.write(Data("\(label): \(done)/\(total), \(rateText), ETA \(etaText)\n".utf8))
        }
    }
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score every document of a corpus with GradNormIR, one JSON line per document.",
        discussion: """
            Writes {"_id", "gradnorm" (null when the document has no valid record), "records", "loss"[, "reason"]} \
            per document, in corpus order, flushing each line to disk. Rerun with the same arguments after an \
            interruption: the complete lines are kept and scoring resumes with the next document.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "A BEIR folder (its corpus.jsonl) or a JSONL file of documents (_id, title, text).")
    var corpus: String
    @Option(help: "Output JSONL file (a sidecar FILE.meta.json records the settings for resuming).")
    var out: String
    @Option(help: "Positives per document.") var positives: Int = 16
    @Option(help: "Negatives per record.") var negatives: Int = 4
    @Option(help: "Dropout probability on the document query's last-layer states.") var dropout: Float = 0.02
    @Option(help: "InfoNCE temperature.") var temperature: Double = 0.05
    @Option(name: .long, help: "Maximum tokens per document, special tokens included.") var maxLength: Int = 512
    @Option(help: "Seed of the dropout masks.") var seed: UInt64 = 0
    @Option(help: "Score only the first N documents (the index still holds the whole corpus).") var limit: Int?
    @Option(help: "Score a seeded random sample of N documents, in corpus order (the index still holds the whole corpus; the paper's regime of a large index with few scored documents).")
    var sample: Int?
    @Option(name: .long, help: "Depth of the document's excluded neighbourhood N(d) (default: min(100, max(2·positives, ⌈|C|/10⌉))).")
    var exclusionDepth: Int?
    @Option(name: .long, help: "Depth of each positive's candidate neighbourhood N(x) (default: min(100, |C|−1)).")
    var candidateDepth: Int?
    @Flag(name: .long, inversion: .prefixedNo, help: "Skip the first remaining neighbour of each positive (the authors' code does).")
    var skipFirstNegative = true
    @Option(name: .long, help: "What to do with a bad corpus line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    func run() throws {
        try reportingErrors {
            var config = ScoringConfig()
            config.positives = positives
            config.negatives = negatives
            config.dropout = dropout
            config.temperature = temperature
            config.maxLength = maxLength
            config.seed = seed
            config.skipFirstNegative = skipFirstNegative
            config.exclusionDepth = exclusionDepth
            config.candidateDepth = candidateDepth
            try config.validate()
            if let limit, limit < 0 { throw GradNormIRError.invalidInput("--limit must be non-negative") }
            if let sample, sample < 0 { throw GradNormIRError.invalidInput("--sample must be non-negative") }
            if limit != nil && sample != nil { throw GradNormIRError.invalidInput("use --limit or --sample, not both") }

            let (docs, skipped) = try BEIRDataset.loadCorpus(path: corpus, onBadLine: onBadLine)
            if skipped > 0 { note("score: skipped \(skipped) bad line(s) of \(corpus)") }
            guard !docs.isEmpty else { throw GradNormIRError.invalidInput("\(corpus): no documents") }
            let model = try options.load()
            let chosen: [Int]
            if let sample {
                chosen = seededSample(count: docs.count, sample: sample, seed: seed)
            } else {
                chosen = Array(0..<min(limit ?? docs.count, docs.count))
            }
            let targets = chosen.map { docs[$0] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let settings = String(decoding: try encoder.encode(config), as: UTF8.self)
            let meta = "{\"corpus\": \(JSONLines.quote(corpus)), \"documents\": \(docs.count), "
                + "\"scored\": \(JSONLines.quote(sample.map { "sample \($0)" } ?? limit.map { "first \($0)" } ?? "all")), "
                + "\"model\": \(JSONLines.quote(model.checkpoint.folder)), \"config\": \(settings)}"
            let file = try ScoreFile(path: out, expectedIds: targets.map(\.id), meta: meta)
            if file.done.count == targets.count {
                note("score: \(out) already has all \(targets.count) documents")
                return
            }
            if !file.done.isEmpty { note("score: resuming after \(file.done.count) of \(targets.count) documents") }

            var embedProgress = ProgressReporter(label: "embedding", total: docs.count)
            let index = try CorpusIndex(documents: docs.map(\.fullText), retriever: model, config: config) {
                embedProgress.update($0, force: $0 == docs.count)
            }
            let scorer = GradNormScorer(retriever: model, corpus: index)
            var progress = ProgressReporter(label: "scoring", total: targets.count, alreadyDone: file.done.count)
            let started = Date()
            let first = file.done.count
            for j in file.done.count..<targets.count {
                let d = chosen[j]
                let s = scorer.score(document: d, id: docs[d].id)
                try file.append(s.jsonLine)
                progress.update(j + 1, force: j + 1 == targets.count)
            }
            let secs = Date().timeIntervalSince(started)
            note("score: \(targets.count - first) documents in \(String(format: "%.1f", secs)) s "
                 + "(\(String(format: "%.3f", Double(targets.count - first) / max(secs, 1e-9))) documents/s, "
                 + "\(BLAS.engineThreads) thread(s)); index of \(docs.count) documents")
        }
    }
}

extension BadLinePolicy: ExpressibleByArgument {}

func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// A calibrated decision threshold (METHOD.md §"Decisions").
struct ThresholdFile: Codable {
    var threshold: Double
    var statistic: String
    var mean: Double
    var std: Double
    var n: Int
    var unscored: Int
    var quantiles: [String: Double]
    var scores: String
    /// The reference's scoring settings (its .meta.json), to check the regime matches.
    var settings: String?

    /// Reads a file written by `gradnormir calibrate`; errors name the file.
    static func read(_ path: String) throws -> ThresholdFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
        guard let t = try? JSONDecoder().decode(ThresholdFile.self, from: data) else {
            throw GradNormIRError.malformedJSON(path: path, line: nil, reason: "not a threshold file from `gradnormir calibrate`")
        }
        return t
    }
}

/// Reads a score file: (id, score or nil) per line, errors naming file and line.
func readScores(_ path: String) throws -> [(id: String, score: Double?)] {
    guard let data = FileManager.default.contents(atPath: path) else { throw GradNormIRError.fileNotFound(path: path) }
    var out: [(String, Double?)] = []
    try JSONLines.forEachObject(in: data, source: path) { line, obj in
        guard let id = obj["_id"] as? String else {
            throw GradNormIRError.malformedJSON(path: path, line: line, reason: "missing string field \"_id\"")
        }
        let v = obj["gradnorm"]
        if v == nil || v is NSNull {
            out.append((id, nil))
        } else if let n = v as? NSNumber, n.doubleValue.isFinite {
            out.append((id, n.doubleValue))
        } else {
            throw GradNormIRError.malformedJSON(path: path, line: line, reason: "\"gradnorm\" must be a finite number or null")
        }
    }
    return out
}

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Threshold from the scores of an in-distribution reference: their mean, plus quantiles.",
        discussion: "Score the reference in the same regime (index size, depths, settings) as the corpora it will judge.")

    @Option(help: "Score file of the in-distribution reference (from `gradnormir score`).") var scores: String
    @Option(help: "Output threshold file (JSON).") var out: String
    @Option(help: "Which statistic is the threshold: mean (the paper's) or a quantile such as q0.95.")
    var use: String = "mean"

    func run() throws {
        try reportingErrors {
            let rows = try readScores(scores)
            let values = rows.compactMap(\.score)
            guard values.count >= 2 else {
                throw GradNormIRError.invalidInput("\(scores): needs at least 2 scored documents, found \(values.count)")
            }
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
            var q: [String: Double] = [:]
            for p in [0.5, 0.75, 0.9, 0.95, 0.99] { q["q\(p)"] = Metrics.quantile(values, p) ?? mean }
            let threshold: Double
            if use == "mean" { threshold = mean } else if let v = q[use] { threshold = v } else {
                throw GradNormIRError.invalidInput("--use must be mean or one of \(q.keys.sorted().joined(separator: ", "))")
            }
            let settings = FileManager.default.contents(atPath: scores + ".meta.json").map { String(decoding: $0, as: UTF8.self) }
            let t = ThresholdFile(threshold: threshold, statistic: use, mean: mean, std: std, n: values.count,
                                  unscored: rows.count - values.count, quantiles: q, scores: scores, settings: settings)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(t).write(to: URL(fileURLWithPath: out), options: .atomic)
            print(String(decoding: try enc.encode(t), as: UTF8.self))
        }
    }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Flag OOD documents (score above the threshold), the OOD ratio and the corpus decision, as JSON.")

    @Option(help: "Score file of the corpus to judge.") var scores: String
    @Option(help: "Threshold file from `gradnormir calibrate`.") var threshold: String
    @Option(help: "Update the retriever when the OOD ratio exceeds this (the paper leaves it to the operator).")
    var gamma: Double = 0.5

    func run() throws {
        try reportingErrors {
            let t = try ThresholdFile.read(threshold)
            guard gamma >= 0, gamma <= 1 else { throw GradNormIRError.invalidInput("--gamma must be in [0, 1]") }
            let rows = try readScores(scores)
            guard !rows.isEmpty else { throw GradNormIRError.invalidInput("\(scores): no documents") }
            let ood = rows.filter { ($0.score ?? -.infinity) > t.threshold }.map(\.id)
            let unscored = rows.filter { $0.score == nil }.map(\.id)
            let ratio = Double(ood.count) / Double(rows.count)
            // The threshold is only meaningful in the regime it was calibrated in.
            var regimeNote = "unknown"
            if let ref = t.settings, let mine = FileManager.default.contents(atPath: scores + ".meta.json") {
                regimeNote = sameRegime(ref, String(decoding: mine, as: UTF8.self)) ? "same" : "different"
                if regimeNote == "different" {
                    note("detect: warning: \(scores) was scored with other settings or another index size than the threshold's reference")
                }
            }
            var fields: [String] = [
                "\"threshold\": \(t.threshold)", "\"threshold_statistic\": \(JSONLines.quote(t.statistic))",
                "\"documents\": \(rows.count)", "\"scored\": \(rows.count - unscored.count)",
                "\"unscored\": [\(unscored.map(JSONLines.quote).joined(separator: ", "))]",
                "\"ood_count\": \(ood.count)", "\"ood_ratio\": \(ratio)", "\"gamma\": \(gamma)",
                "\"decision\": \(ratio > gamma ? "\"update\"" : "\"keep\"")",
                "\"regime\": \(JSONLines.quote(regimeNote))",
                "\"ood\": [\(ood.map(JSONLines.quote).joined(separator: ", "))]",
            ]
            fields.insert("\"scores\": \(JSONLines.quote(scores))", at: 0)
            print("{" + fields.joined(separator: ", ") + "}")
        }
    }

    /// Same model, settings and index size (the corpus path may differ).
    func sameRegime(_ a: String, _ b: String) -> Bool {
        func parse(_ s: String) -> [String: Any]? { try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] }
        guard let x = parse(a), let y = parse(b) else { return false }
        let cx = (x["config"] as? NSDictionary), cy = (y["config"] as? NSDictionary)
        return cx == cy && (x["documents"] as? Int) == (y["documents"] as? Int) && (x["model"] as? String) == (y["model"] as? String)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detection accuracy of GradNormIR scores against the retriever's real recall, with baselines.",
        discussion: """
            Ground truth: every query of the dataset retrieves (top k by inner product) from the documents \
            with a relevant query; recall(d) is the share of d's relevant queries that find d. Reports DRR of the \
            flagged set and of all documents, AUROC of each score against recall(d) < 1 (with a bootstrap 95% \
            interval), and, with --reference, the kNN-distance, Mahalanobis and IPQ baselines at GradNormIR's budget. \
            Prints JSON on standard output and a table on standard error.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "BEIR folder with corpus.jsonl, queries.jsonl and qrels/.") var dataset: String
    @Option(help: "Score file of the dataset's corpus (from `gradnormir score`).") var scores: String
    @Option(help: "Retrieval depth for recall@k.") var k: Int = 100
    @Option(help: "Threshold file (from `gradnormir calibrate`); without it the budget is the number of failures.")
    var threshold: String?
    @Option(help: "In-distribution reference (BEIR folder or JSONL) to fit the embedding baselines on.")
    var reference: String?
    @Option(name: .long, help: "Maximum tokens for retrieval embeddings (default: the model's max_seq_length).")
    var maxLength: Int?
    @Option(help: "Seed of the IPQ k-means and the bootstrap.") var seed: UInt64 = 0
    @Option(name: .long, help: "What to do with a bad dataset line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let data = try BEIRDataset.load(folder: dataset, onBadLine: onBadLine)
            if data.skippedLines > 0 { note("evaluate: skipped \(data.skippedLines) bad line(s) in \(dataset)") }
            var byId: [String: Double?] = [:]
            for row in try readScores(scores) { byId[row.id] = row.score }
            var thr: Double?
            if let threshold {
                thr = try ThresholdFile.read(threshold).threshold
            }
            var refEmb: [[Float]]?
            if let reference {
                let (docs, _) = try BEIRDataset.loadCorpus(path: reference, onBadLine: onBadLine)
                refEmb = try model.searchEmbeddings(docs.map(\.fullText), maxLength: maxLength)
            }
            let report = try Evaluation.evaluate(dataset: data, retriever: model, scores: byId, reference: refEmb,
                                                 threshold: thr, k: k, maxLength: maxLength, seed: seed)
            print(report.json)
            note(report.table)
        }
    }
}
