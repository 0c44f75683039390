import ArgumentParser
import Foundation

// What the `gradnormir` command line and the `bench` program share: option types and errors of
// ArgumentParser programs. Not a product: library users never see it.

/// A bad option value found by a command's `validate()`, before anything is read or written.
/// ArgumentParser prints it as one line (`Error: …`) and exits with status 1.
public struct OptionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A comma-separated list of values given as one option (`--strategies zero-shot,naive`):
/// blanks around items are ignored and empty items dropped; an item that does not parse, a
/// repeated item or an empty list is refused with a message naming the item.
public struct CommaList<Element: ExpressibleByArgument & Equatable>: CustomStringConvertible {
    public var values: [Element]

    public init(_ values: [Element]) { self.values = values }

    public var description: String { values.map(\.defaultValueDescription).joined(separator: ",") }

    /// The option's `transform`: `invalid(item)` is the message for an item that does not parse.
    public static func parser(_ invalid: @escaping (String) -> String) -> (String) throws -> CommaList {
        { text in
            var out: [Element] = []
            for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                guard let v = Element(argument: part) else { throw OptionError(invalid(part)) }
                guard !out.contains(v) else { throw OptionError("'\(part)' is given twice") }
                out.append(v)
            }
            guard !out.isEmpty else { throw OptionError("no value given") }
            return CommaList(out)
        }
    }
}
