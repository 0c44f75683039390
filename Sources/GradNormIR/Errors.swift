/// Every error a user can cause: bad files, bad JSON, bad checkpoints, bad input text.
/// The description names the file, the line or the tensor, so a person can act on it.
public enum GradNormIRError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file or folder that should exist does not.
    case fileNotFound(path: String)
    /// A file exists but could not be read or written.
    case io(path: String, reason: String)
    /// A JSON document or a JSON line is malformed (line is 1-based, nil for whole files).
    case malformedJSON(path: String, line: Int?, reason: String)
    /// Bytes that are not valid UTF-8 (line is 1-based, nil for whole files).
    case invalidUTF8(path: String, line: Int?)
    /// A checkpoint that is corrupt or does not match its config (tensor named when known).
    case checkpoint(path: String, tensor: String?, reason: String)
    /// A vocabulary or tokenizer configuration problem.
    case tokenizer(path: String, reason: String)
    /// A well-formed line whose content cannot be used (empty or duplicate record, bad TSV
    /// column, unknown id, …); line is 1-based.
    case badRecord(path: String, line: Int, reason: String)
    /// A setting outside its valid range. `name` is the property of the settings type
    /// (`maxLength` of `ScoringConfig`, say); a command line names its own option instead.
    case invalidSetting(name: String, reason: String)
    /// An output to resume holds the work of another run (other settings or inputs), or lines
    /// that are not this run's; nothing in it was changed.
    case resumeMismatch(path: String, reason: String)
    /// An output that another running process is writing (it holds the output's lock).
    case outputInUse(path: String, pid: Int32?)
    /// Anything else the user passed that cannot be used (empty document, bad option value, …).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file or directory"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .malformedJSON(let path, let line, let reason):
            return "\(path)\(line.map { ":\($0)" } ?? ""): malformed JSON: \(reason)"
        case .invalidUTF8(let path, let line):
            return "\(path)\(line.map { ":\($0)" } ?? ""): invalid UTF-8"
        case .checkpoint(let path, let tensor, let reason):
            return "\(path)\(tensor.map { ": tensor '\($0)'" } ?? ""): \(reason)"
        case .tokenizer(let path, let reason):
            return "\(path): \(reason)"
        case .badRecord(let path, let line, let reason):
            return "\(path):\(line): \(reason)"
        case .invalidSetting(let name, let reason):
            return "\(name) \(reason)"
        case .resumeMismatch(let path, let reason):
            return "\(path): \(reason)"
        case .outputInUse(let path, let pid):
            return "\(path): in use by \(pid.map { "pid \($0)" } ?? "another process"): another run is writing this output"
                + " (wait for it to finish, or use another output)"
        case .invalidInput(let reason):
            return reason
        }
    }
}
