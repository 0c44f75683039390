import ArgumentParser
import Foundation

@main
struct GradNormIRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradnormir",
        abstract: "Score how out-of-distribution documents are for a dense retriever (GradNormIR).",
        subcommands: [Tokenize.self, Embed.self, GradNorm.self, Index.self, Score.self, Predict.self, Select.self, Merge.self, Calibrate.self, Detect.self, Evaluate.self, Recall.self, Update.self, Simulate.self])
}
