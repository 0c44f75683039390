import ArgumentParser
import Foundation
import GradNormIR

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of each text as JSON lines {\"text\", \"ids\"}.",
        discussion: "With no TEXT, reads JSON lines {\"text\": …} (or a BEIR corpus.jsonl) from standard input.")

    @OptionGroup var options: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "Maximum ids per text, [CLS] and [SEP] included (default: the model's max_seq_length).")
    var maxLength: Int?
    @Argument(help: "Texts to tokenize.") var texts: [String] = []

    /// One output line.
    struct Line: Encodable {
        let id: String?
        let text: String
        let ids: [Int]
        enum CodingKeys: String, CodingKey { case id = "_id", text, ids }
    }

    func run() throws {
        try reportingErrors {
            let model = try options.load()
            let m = try model.validatedMaxLength(maxLength)
            let encoder = JSONLineEncoder()
            var out = LineWriter()
            for r in try inputRecords(texts) {
                out.write(try encoder.encode(Line(id: r.id, text: r.text, ids: model.tokenizer.encode(r.text, maxLength: m))))
            }
            out.flush()
        }
    }
}
