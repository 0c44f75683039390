import ArgumentParser
import Foundation
import CommandLineSupport
import GradNormIR

/// How a command names the library's settings and what it tells a user whose output holds
/// another run's work.
struct CommandVocabulary {
    /// Library setting name → option name without the dashes, where the two differ beyond
    /// camelCase → kebab-case (`learningRate` → `lr`).
    var options: [String: String] = [:]
    /// Appended to a `.resumeMismatch` error: what to do about it (`use --restart …`).
    var resumeHint: String?

    /// The command's option for a library setting name: `--` + its override, or the name in
    /// kebab-case (`maxLength` → `--max-length`).
    func option(_ setting: String) -> String {
        if let o = options[setting] { return "--" + o }
        var out = "--"
        for c in setting {
            if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// The message for a library error, in the command's words.
    func message(_ e: GradNormIRError) -> String {
        switch e {
        case .invalidSetting(let name, let reason):
            return "\(option(name)) \(reason)"
        case .resumeMismatch:
            return e.description + (resumeHint.map { ": " + $0 } ?? "")
        default:
            return e.description
        }
    }
}

/// Runs `body`, turning every user-caused error into one line on standard error and exit code 1.
func reportingErrors(_ vocabulary: CommandVocabulary = CommandVocabulary(), _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as GradNormIRError {
        FileHandle.standardError.write(Data("gradnormir: error: \(vocabulary.message(e))\n".utf8))
        throw ExitCode(1)
    }
}

/// Runs a library check inside `validate()`, rethrowing its error as an `OptionError` in the
/// command's words.
func validating(_ vocabulary: CommandVocabulary = CommandVocabulary(), _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as GradNormIRError {
        throw OptionError(vocabulary.message(e))
    }
}
