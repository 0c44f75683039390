import ArgumentParser
import Foundation
import GradNormIR
import TransformerLite

@main
struct GradNormIRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradnormir",
        abstract: "Score how out-of-distribution documents are for a dense retriever (GradNormIR).",
        subcommands: [Tokenize.self, Embed.self])
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
