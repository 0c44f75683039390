import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

/// `gradnormir recall`: a retriever's recall@k on a dataset's queries and, with --baseline, the
/// paired comparison that says whether an update (or another candidate) helped.
struct Recall: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recall@k of a retriever on a dataset's queries, optionally paired against a baseline retriever.",
        discussion: """
            Every query with a relevant document retrieves its top k (cosine) from the documents that have a \
            relevant query — the ground truth of `evaluate` and `simulate`. With --baseline, both retrievers run \
            on the same queries and the report counts the queries each wins and gives the exact two-sided sign \
            test. --split dev|test keeps one of two fixed halves of the queries (a seeded hash of the query id): \
            choose settings on dev, report on test. Prints JSON on standard output and a summary on standard error.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "Model folder to compare against (e.g. the model before `gradnormir update`).")
    var baseline: String?
    @Option(help: "BEIR folder with corpus.jsonl, queries.jsonl and qrels/.") var dataset: String
    @Option(parsing: .unconditional, help: "Retrieval depth.") var k: Int = 10
    @Option(help: "Queries to use: all, dev or test (two disjoint halves).") var split: QuerySplit = .all
    @Option(name: .long, parsing: .unconditional, help: "Seed of the dev/test split.") var splitSeed: UInt64 = 0
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens for retrieval embeddings (default: the model's max_seq_length).")
    var maxLength: Int?
    @Option(name: .long, help: "What to do with a bad dataset line: fail (default) or skip (and count).")
    var onBadLine: BadLinePolicy = .fail
    @Option(help: "A persisted index of the dataset's corpus made with --model (`gradnormir index`, same --max-length): its embeddings are read instead of computed (the baseline's are computed).")
    var index: String?

    /// The output object (the baseline's fields only with --baseline).
    struct Output: Encodable {
        let dataset: String
        let k: Int
        let split: String
        let splitSeed: UInt64
        let queries: Int
        let model: String
        let recall: Double
        var baseline: String?
        var baselineRecall: Double?
        var delta: Double?
        var gained: Int?
        var lost: Int?
        var signTestP: Double?
        enum CodingKeys: String, CodingKey {
            case dataset, k, split, splitSeed = "split_seed", queries, model, recall, baseline
            case baselineRecall = "baseline_recall", delta, gained, lost, signTestP = "sign_test_p"
        }
    }

    func validate() throws {
        guard k >= 1 else { throw OptionError("--k must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let data = try BEIRDataset.load(folder: dataset, onBadLine: onBadLine)
            if data.skippedLines > 0 { note("recall: skipped \(data.skippedLines) bad line(s) in \(dataset)") }
            let split = self.split, seed = splitSeed
            func measure(_ r: Retriever, embeddings: [[Float]]? = nil) throws -> QueryRecall {
                try Evaluation.queryRecall(dataset: data, retriever: r, k: k, maxLength: maxLength, documentEmbeddings: embeddings,
                                           include: { split.contains($0.id, seed: seed) })
            }
            let model = try options.load()
            let embeddings = try index.map { folder in
                try EmbeddingIndex.load(folder: folder, documents: data.corpus, retriever: model, maxLength: maxLength).embeddings
            }
            let candidate = try measure(model, embeddings: embeddings)
            var output = Output(dataset: dataset, k: k, split: split.rawValue, splitSeed: seed, queries: candidate.ids.count,
                                model: options.folder, recall: candidate.mean)
            var summary = String(format: "recall: %@ recall@%d %.4f over %d queries (%@)",
                                 options.folder, k, candidate.mean, candidate.ids.count, split.rawValue)
            if let baseline {
                let base = try measure(try Retriever.load(folder: baseline))
                let c = try RecallComparison(baseline: base, candidate: candidate)
                output.baseline = baseline
                output.baselineRecall = base.mean
                output.delta = c.delta
                output.gained = c.gained
                output.lost = c.lost
                output.signTestP = c.signTestP
                summary += String(format: "; baseline %.4f, Δ %+.4f, queries gained %d, lost %d, sign test p = %.3g",
                                  base.mean, c.delta, c.gained, c.lost, c.signTestP)
            }
            try printJSON(output)
            note(summary)
        }
    }
}
