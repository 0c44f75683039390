import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

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
    @Option(parsing: .unconditional, help: "Retrieval depth for recall@k.") var k: Int = 100
    @Option(help: "Threshold file (from `gradnormir calibrate`); without it the budget is the number of failures.")
    var threshold: String?
    @Option(help: "In-distribution reference (BEIR folder or JSONL) to fit the embedding baselines on.")
    var reference: String?
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens for retrieval embeddings (default: the model's max_seq_length).")
    var maxLength: Int?
    @Option(parsing: .unconditional, help: "Seed of the IPQ k-means and the bootstrap.") var seed: UInt64 = 0
    @Option(name: .long, help: "What to do with a bad dataset line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail
    @Option(help: "A persisted index of the dataset's corpus (`gradnormir index`, same model and --max-length): its embeddings are read instead of computed.")
    var index: String?
    @Option(name: .long, help: "Also write one JSON line per evaluated document to this file: {\"_id\", \"score\", \"recall\", \"failed\", \"queries\", \"ranks\"} (rank of the document for each relevant query, null below 100).")
    var perDocument: String?

    func validate() throws {
        guard k >= 1 else { throw OptionError("--k must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let data = try BEIRDataset.load(folder: dataset, onBadLine: onBadLine)
            if data.skippedLines > 0 { note("evaluate: skipped \(data.skippedLines) bad line(s) in \(dataset)") }
            var byId: [String: Double?] = [:]
            for row in try ScoreFile.read(scores) { byId[row.id] = row.score }
            let thr = try threshold.map { try Threshold.read($0).threshold }
            var refEmb: [[Float]]?
            if let reference {
                let (docs, _) = try BEIRDataset.loadCorpus(path: reference, onBadLine: onBadLine)
                refEmb = try model.searchEmbeddings(docs.map(\.fullText), maxLength: maxLength)
            }
            let embeddings = try index.map { folder in
                try EmbeddingIndex.load(folder: folder, documents: data.corpus, retriever: model, maxLength: maxLength).embeddings
            }
            let report = try Evaluation.evaluate(dataset: data, retriever: model, scores: byId, reference: refEmb,
                                                 threshold: thr, k: k, maxLength: maxLength, seed: seed,
                                                 documentEmbeddings: embeddings)
            if let perDocument {
                let encoder = JSONLineEncoder()
                let lines = try report.outcomes.map { try encoder.encode($0) + "\n" }.joined()
                try writeFileAtomically(perDocument, Data(lines.utf8))
            }
            print(report.json)
            note(report.table)
        }
    }
}
