import ArgumentParser
import Foundation
import GradNormIR
import TransformerLite

@main
struct GradNormIRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradnormir",
        abstract: "Score how out-of-distribution documents are for a dense retriever (GradNormIR).",
        subcommands: [Tokenize.self, Embed.self, GradNorm.self, Score.self, Calibrate.self, Detect.self, Evaluate.self, Recall.self, Update.self, Simulate.self])
}

/// Options every model-using command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Hugging Face BERT-family model folder (default: $GRADNORMIR_MODEL or models/all-MiniLM-L6-v2).")
    var model: String?

    @Option(name: .long, help: "BLAS and worker threads (default: OpenBLAS's own choice).")
    var threads: Int?

    func load() throws -> Retriever {
        if let t = threads {
            guard t >= 1 else { throw GradNormIRError.invalidInput("--threads must be at least 1") }
            BLAS.setThreads(t)
        }
        return try Retriever.load(folder: model ?? Retriever.defaultModelFolder())
    }
}

/// Runs `body`, turning every user-caused error into one line on standard error and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as GradNormIRError {
        FileHandle.standardError.write(Data("gradnormir: error: \(e.description)\n".utf8))
        throw ExitCode(1)
    }
}

/// The texts to work on: the arguments, or JSON lines from standard input when there are none.
func inputRecords(_ texts: [String]) throws -> [TextRecord] {
    if !texts.isEmpty {
        return texts.enumerated().map { TextRecord(id: nil, text: $0.element, line: $0.offset + 1) }
    }
    let data = FileHandle.standardInput.readDataToEndOfFile()
    return try JSONLines.readTextRecords(from: data, source: "<stdin>")
}

/// Buffered standard output.
struct LineWriter {
    private var buffer = ""
    mutating func write(_ line: String) {
        buffer += line
        buffer += "\n"
        if buffer.utf8.count > 1 << 16 { flush() }
    }
    mutating func flush() {
        if !buffer.isEmpty { FileHandle.standardOutput.write(Data(buffer.utf8)); buffer = "" }
    }
}

/// `{"_id": …, ` prefix for records that have an id.
func idField(_ r: TextRecord) -> String {
    r.id.map { "\"_id\": \(JSONLines.quote($0)), " } ?? ""
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of each text as JSON lines {\"text\", \"ids\"}.",
        discussion: "With no TEXT, reads JSON lines {\"text\": …} (or a BEIR corpus.jsonl) from standard input.")

    @OptionGroup var options: ModelOptions
    @Option(name: .long, help: "Maximum ids per text, [CLS] and [SEP] included (default: the model's max_seq_length).")
    var maxLength: Int?
    @Argument(help: "Texts to tokenize.") var texts: [String] = []

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            var out = LineWriter()
            for r in try inputRecords(texts) {
                let ids = model.tokenizer.encode(r.text, maxLength: m)
                out.write("{\(idField(r))\"text\": \(JSONLines.quote(r.text)), \"ids\": [\(ids.map(String.init).joined(separator: ", "))]}")
            }
            out.flush()
        }
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the embedding of each text as JSON lines {\"text\", \"embedding\"}.",
        discussion: "With no TEXT, reads JSON lines {\"text\": …} (or a BEIR corpus.jsonl) from standard input. Empty texts are rejected.")

    @OptionGroup var options: ModelOptions
    @Option(name: .long, help: "Maximum tokens per text, [CLS] and [SEP] included (default: the model's max_seq_length).")
    var maxLength: Int?
    @Argument(help: "Texts to embed.") var texts: [String] = []

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let records = try inputRecords(texts)
            let source = texts.isEmpty ? "<stdin>" : "argument"
            for r in records where r.text.allSatisfy(\.isWhitespace) {
                throw GradNormIRError.invalidInput("\(source) \(r.line): empty text cannot be embedded")
            }
            var out = LineWriter()
            // Embed in chunks so output starts early and memory stays bounded on big inputs.
            let chunk = 256
            var start = 0
            while start < records.count {
                let part = Array(records[start..<min(start + chunk, records.count)])
                let emb = try model.embed(part.map(\.text), maxLength: m)
                for (r, e) in zip(part, emb) {
                    guard e.allSatisfy(\.isFinite) else {
                        throw GradNormIRError.invalidInput("\(source) \(r.line): the model produced a non-finite embedding")
                    }
                    out.write("{\(idField(r))\"text\": \(JSONLines.quote(r.text)), \"embedding\": [\(e.map { "\($0)" }.joined(separator: ", "))]}")
                }
                start += chunk
            }
            out.flush()
        }
    }
}

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
    @Option(help: "InfoNCE temperature τ.") var temperature: Double = 0.05
    @Option(name: .long, help: "Maximum tokens per text, [CLS] and [SEP] included (GradNormIR uses 512).")
    var maxLength: Int = 512
    @Flag(help: "Also print the gradient norm of every tensor.") var tensorNorms = false

    func run() throws {
        try reportingErrors {
            guard !negative.isEmpty else { throw GradNormIRError.invalidInput("at least one --negative is needed") }
            guard temperature > 0, temperature.isFinite else {
                throw GradNormIRError.invalidInput("--temperature must be a positive number")
            }
            for (name, text) in [("--query", query), ("--positive", positive)] + negative.map({ ("--negative", $0) })
            where text.allSatisfy(\.isWhitespace) {
                throw GradNormIRError.invalidInput("\(name): empty text")
            }
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let ids = { (t: String) in model.tokenizer.encode(t, maxLength: m) }
            let scorer = RecordGradient(retriever: model)
            let r = scorer.compute(query: ids(query), positive: ids(positive), negatives: negative.map(ids),
                                   temperature: temperature, tensorNorms: tensorNorms)
            guard r.loss.isFinite, r.gradNorm.isFinite else {
                throw GradNormIRError.invalidInput("the loss or gradient is not finite")
            }
            var fields = ["\"loss\": \(r.loss)", "\"grad_norm\": \(r.gradNorm)", "\"negatives\": \(negative.count)",
                          "\"temperature\": \(temperature)", "\"max_length\": \(m)"]
            if tensorNorms {
                let inner = r.tensorNorms.keys.sorted().map { "\(JSONLines.quote($0)): \(r.tensorNorms[$0]!)" }
                fields.append("\"tensor_norms\": {\(inner.joined(separator: ", "))}")
            }
            print("{" + fields.joined(separator: ", ") + "}")
        }
    }
}
