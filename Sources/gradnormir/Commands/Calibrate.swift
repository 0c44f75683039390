import ArgumentParser
import Foundation
import GradNormIR

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Threshold from the scores of an in-distribution reference: their mean, plus quantiles.",
        discussion: "Score the reference in the same regime (index size, depths, settings) as the corpora it will judge.")

    @Option(help: "Score file of the in-distribution reference (from `gradnormir score`).") var scores: String
    @Option(help: "Output threshold file (JSON).") var out: String
    @Option(help: "Which statistic is the threshold: mean (the paper's) or a quantile such as q0.95.")
    var use: ThresholdStatistic = .mean

    func run() throws {
        try reportingErrors {
            let t = try Threshold.calibrate(scores: try ScoreFile.read(scores), statistic: use, source: scores,
                                            settings: ScoreFile.recordedSettings(of: scores))
            let json = try t.json()
            try json.write(to: URL(fileURLWithPath: out), options: .atomic)
            print(String(decoding: json, as: UTF8.self))
        }
    }
}
