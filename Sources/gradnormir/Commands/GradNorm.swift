import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

struct GradNorm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradnorm",
        abstract: "Loss and gradient norm of one GradNormIR record, as one JSON object.",
        discussion: """
            The query, the positive and the negatives are encoded by the model in eval mode; the loss is \
            InfoNCE with cosine similarity and temperature T (positive first); grad_norm is the global L2 \
            norm of the loss gradient over all encoder parameters except the position embeddings.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "The document used as the query.") var query: String
    @Option(help: "The positive passage.") var positive: String
    @Option(help: "A negative passage (repeat for more).") var negative: [String] = []
    @Option(parsing: .unconditional, help: "InfoNCE temperature τ.") var temperature: Double = 0.05
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per text, [CLS] and [SEP] included (GradNormIR uses 512).")
    var maxLength: Int = 512
    @Flag(help: "Also print the gradient norm of every tensor.") var tensorNorms = false
    @OptionGroup var memory: MemoryOptions

    /// The output object.
    struct Output: Encodable {
        let loss: Double
        let gradNorm: Double
        let negatives: Int
        let temperature: Double
        let maxLength: Int
        let tensorNorms: [String: Double]?
        enum CodingKeys: String, CodingKey {
            case loss, gradNorm = "grad_norm", negatives, temperature, maxLength = "max_length", tensorNorms = "tensor_norms"
        }
    }

    func validate() throws {
        guard !negative.isEmpty else { throw OptionError("at least one --negative is needed") }
        guard temperature > 0, temperature.isFinite else { throw OptionError("--temperature must be a positive number") }
        for (name, text) in [("--query", query), ("--positive", positive)] + negative.map({ ("--negative", $0) })
        where text.allSatisfy(\.isWhitespace) {
            throw OptionError("\(name): empty text")
        }
    }

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let ids = { (t: String) in model.tokenizer.encode(t, maxLength: m) }
            let scorer = RecordGradient(retriever: model, memory: memory.mode)
            let r = scorer.compute(query: ids(query), positive: ids(positive), negatives: negative.map(ids),
                                   temperature: temperature, tensorNorms: tensorNorms)
            guard r.loss.isFinite, r.gradNorm.isFinite else {
                throw GradNormIRError.invalidInput("the loss or gradient is not finite")
            }
            try printJSON(Output(loss: r.loss, gradNorm: r.gradNorm, negatives: negative.count, temperature: temperature,
                                 maxLength: m, tensorNorms: tensorNorms ? r.tensorNorms : nil))
        }
    }
}
