import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the embedding of each text as JSON lines {\"text\", \"embedding\"}.",
        discussion: "With no TEXT, reads JSON lines {\"text\": …} (or a BEIR corpus.jsonl) from standard input. Empty texts are rejected.")

    @OptionGroup var options: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "Maximum tokens per text, [CLS] and [SEP] included (default: the model's max_seq_length).")
    var maxLength: Int?
    @Argument(help: "Texts to embed.") var texts: [String] = []

    /// One output line.
    struct Line: Encodable {
        let id: String?
        let text: String
        let embedding: [Float]
        enum CodingKeys: String, CodingKey { case id = "_id", text, embedding }
    }

    func validate() throws {
        for (i, t) in texts.enumerated() where t.allSatisfy(\.isWhitespace) {
            throw OptionError("argument \(i + 1): empty text cannot be embedded")
        }
    }

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let records = try inputRecords(texts)
            for r in records where r.text.allSatisfy(\.isWhitespace) {
                throw GradNormIRError.invalidInput("<stdin> \(r.line): empty text cannot be embedded")
            }
            let source = texts.isEmpty ? "<stdin>" : "argument"
            let encoder = JSONLineEncoder()
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
                    out.write(try encoder.encode(Line(id: r.id, text: r.text, embedding: e)))
                }
                start += chunk
            }
            out.flush()
        }
    }
}
