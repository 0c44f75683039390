import ArgumentParser
import CommandLineSupport
import Foundation
import GradNormIR

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Flag OOD documents (score above the threshold), the OOD ratio and the corpus decision, as JSON.")

    @Option(help: "Score file of the corpus to judge.") var scores: String
    @Option(help: "Threshold file from `gradnormir calibrate`.") var threshold: String
    @Option(parsing: .unconditional, help: "Update the retriever when the OOD ratio (over the scored documents) exceeds this (the paper leaves it to the operator).")
    var gamma: Double = 0.5

    func validate() throws {
        guard gamma >= 0, gamma <= 1 else { throw OptionError("--gamma must be in [0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let t = try Threshold.read(threshold)
            let d = try t.detect(scores: try ScoreFile.read(scores), source: scores, gamma: gamma,
                                 scoreSettings: ScoreFile.recordedSettings(of: scores))
            if d.unscoredShare > 0.1 {
                note("detect: warning: \(d.unscoredCount) of \(d.documents) documents of \(scores) are unscored; "
                     + "the OOD ratio is over the \(d.scored) scored ones")
            }
            // The threshold is only meaningful in the regime it was calibrated in.
            if d.regime == .different {
                note("detect: warning: \(scores) was scored with other settings or another index size than the threshold's reference")
            }
            try printJSON(d)
        }
    }
}
