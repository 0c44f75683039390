import ArgumentParser
import CommandLineSupport
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
    @Flag(help: "Replace an existing --out file even if it is not a threshold file.") var force = false

    func validate() throws {
        guard !samePath(out, scores) else { throw OptionError("--out \(out) is the --scores file itself") }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: out, isDirectory: &isFolder) else { return }
        guard !isFolder.boolValue else { throw OptionError("--out \(out) is a folder") }
        if !force, (try? Threshold.read(out)) == nil {
            throw OptionError("--out \(out) exists and is not a threshold file; --force replaces it")
        }
    }

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
