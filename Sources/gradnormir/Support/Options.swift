import ArgumentParser
import Foundation
import CommandLineSupport
import GradNormIR
import TransformerLite

/// The texts to work on: the arguments, or JSON lines from standard input when there are none.
func inputRecords(_ texts: [String]) throws -> [TextRecord] {
    if !texts.isEmpty {
        return texts.enumerated().map { TextRecord(id: nil, text: $0.element, line: $0.offset + 1) }
    }
    let data = FileHandle.standardInput.readDataToEndOfFile()
    return try JSONLines.readTextRecords(from: data, source: "<stdin>")
}

/// Options every model-using command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Hugging Face BERT-family model folder (default: $GRADNORMIR_MODEL or models/all-MiniLM-L6-v2).")
    var model: String?

    @Option(name: .long, parsing: .unconditional, help: "BLAS and worker threads (default: OpenBLAS's own choice).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw OptionError("--threads must be at least 1") }
    }

    /// The model folder: `--model`, else the default (`$GRADNORMIR_MODEL`, the current folder's
    /// or the package's `models/all-MiniLM-L6-v2`).
    var folder: String {
        model ?? Retriever.defaultModelFolder(override: ProcessInfo.processInfo.environment["GRADNORMIR_MODEL"],
                                              programPath: CommandLine.arguments.first)
    }

    /// Sets the thread count and loads the model.
    func load() throws -> Retriever {
        if let threads { BLAS.setThreads(threads) }
        return try Retriever.load(folder: folder)
    }
}

extension BadLinePolicy: ExpressibleByArgument {}
extension QuerySplit: ExpressibleByArgument {}
extension UpdateBatching: ExpressibleByArgument {}
extension UpdatePositive: ExpressibleByArgument {}
extension UpdateStrategy: ExpressibleByArgument {}

extension ThresholdStatistic: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public var defaultValueDescription: String { name }
    public static var allValueStrings: [String] { names }
}
