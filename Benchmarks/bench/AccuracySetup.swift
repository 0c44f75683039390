import Foundation
import GradNormIR
import TransformerLite

/// Section 3: which retriever configuration fits which corpus. A configuration is a checkpoint
/// with its pooling and scoring settings (dropout p, temperature τ, positives, max length). For
/// every configuration and corpus: GradNormIR scores of a seeded sample of documents (scored inside
/// the full corpus index), the threshold from the FAQ reference scored by the same configuration in
/// the same depth regime, the OOD ratio, DRR of the flagged set against all documents, AUROC of
/// GradNormIR and of the embedding baselines at equal budget (recall@k ground truth); then per
/// configuration the Spearman correlation of OOD ratio with actual recall, per corpus whether the
/// fewest-OOD checkpoint is the one with the best actual recall, and which configuration the
/// method recommends (fewest OOD documents).
struct AccuracyBench {
    /// A candidate retriever checkpoint; `short` names it in configuration keys (`L6:cls`).
    struct Candidate { let short: String; let name: String; let folder: String }

    /// A checkpoint with pooling and scoring settings. `modifiers` are the key's changes to the
    /// size's base settings (empty: the checkpoint as shipped, at the size's settings).
    struct Configuration {
        let candidate: Candidate
        let modifiers: [String]
        let pooling: EncoderConfig.Pooling
        let scoring: ScoringConfig
        var key: String { candidate.short + ":" + (modifiers.isEmpty ? "base" : modifiers.joined(separator: "+")) }
        var isBase: Bool { modifiers.isEmpty }
        /// e.g. `L6 mean p0.02 τ0.05 pos4 len128`.
        var name: String {
            "\(candidate.short) \(pooling.rawValue) p\(scoring.dropout) τ\(scoring.temperature) pos\(scoring.positives) len\(scoring.maxLength)"
        }
        /// What retrieval (and so recall@k) depends on: checkpoint, pooling, max length.
        var retrieval: String { "\(candidate.short) \(pooling.rawValue) len\(scoring.maxLength)" }
        var slug: String { key.replacingOccurrences(of: ":", with: "-").replacingOccurrences(of: "+", with: "_") }
    }

    struct Size {
        let name: String
        /// Documents scored per corpus and reference documents scored (`--documents`, `--reference-documents`).
        var documents: Int, referenceDocuments: Int
        let positives: Int, maxLength: Int
        let corpora: [String]
        /// The depth regime, identical for the reference and every corpus of a run (METHOD.md, last
        /// section: the score depends on the depth of d's excluded neighbourhood).
        let exclusionDepth: Int, candidateDepth: Int
        /// Variants every checkpoint can take in `--configs all`.
        let variants: [String]
        /// Configurations run when `--configs` is not given.
        let defaultConfigs: [String]
    }

    static let allCorpora = ["foldoc", "jargon", "vera", "elements", "devil", "wordnet", "perlfaq", "pythonfaq"]
    static func size(quick: Bool, full: Bool) -> Size {
        if quick {
            return Size(name: "quick", documents: 3, referenceDocuments: 6, positives: 4, maxLength: 128,
                        corpora: ["jargon", "vera", "pythonfaq"], exclusionDepth: 16, candidateDepth: 99,
                        variants: ["base", "cls", "p0.1", "tau0.1", "pos8", "len64"],
                        defaultConfigs: ["L6:base", "L3:base", "L6:cls"])
        }
        if full {
            // The corpora that data/corpora-full makes large (968–2,500 documents); elements and
            // the FAQs have no more documents than in data/corpora (`--corpora` adds them).
            return Size(name: "full", documents: 40, referenceDocuments: 60, positives: 16, maxLength: 256,
                        corpora: ["foldoc", "jargon", "vera", "devil", "wordnet"], exclusionDepth: 32, candidateDepth: 99,
                        variants: ["base", "cls", "p0.1", "tau0.1", "pos8", "len128"],
                        defaultConfigs: ["all"])
        }
        return Size(name: "default", documents: 10, referenceDocuments: 20, positives: 4, maxLength: 128,
                    corpora: allCorpora, exclusionDepth: 16, candidateDepth: 99,
                    variants: ["base", "cls", "p0.1", "tau0.1", "pos8", "len64"],
                    // A subset that keeps `make bench` under 15 minutes on 2 cores: the two
                    // checkpoints and CLS pooling. `--configs all` adds p0.1, tau0.1, pos8, len64
                    // and the L3 variants (on a loaded 2-core machine this section took 26 minutes
                    // for 7 configurations, 12.5 for these 3 plus L6:len64).
                    defaultConfigs: ["L6:base", "L3:base", "L6:cls"])
    }

    let candidates: [Candidate]
    let size: Size
    let dataDir: String
    /// `--configs`: keys such as `L6:base`, `L3:cls+tau0.1`, or `default` / `all` (nil: `default`).
    let configKeys: [String]?
    /// `--corpora`: the corpora to use instead of the size's.
    let corporaList: [String]?
    /// `--index-folder`: where persisted indexes (`EmbeddingIndex`) of every (retrieval settings,
    /// corpus) are built once and read by later runs; nil: every run embeds its corpora.
    let indexFolder: String?
    let k = 10
    let seed: UInt64 = 13

    /// The configurations a spec names. `all` = every candidate × every variant of the size;
    /// `default` = the size's list. Modifiers: `cls`/`mean`, `p<dropout>`, `tau<τ>`, `pos<n>`, `len<n>`.
    func configurations(models: [String: Retriever]) throws -> [Configuration] {
        var keys: [String] = []
        let available = Set(candidates.map(\.short))
        let all = candidates.flatMap { c in size.variants.map { "\(c.short):\($0)" } }
        for item in configKeys ?? ["default"] {
            switch item {
            case "default":
                // A missing second checkpoint drops its configurations from the default list.
                keys += size.defaultConfigs.contains("all") ? all
                    : size.defaultConfigs.filter { available.contains(String($0.prefix { $0 != ":" })) }
            case "all": keys += all
            case "": continue
            default: keys.append(item)
            }
        }
        var out: [Configuration] = []
        for key in keys {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let cand = candidates.first(where: { $0.short == parts[0] || $0.name == parts[0] }),
                  let model = models[cand.short] else {
                throw GradNormIRError.invalidInput(
                    "--configs: '\(key)' does not name an available checkpoint (\(candidates.map(\.short).joined(separator: ", "))) as CHECKPOINT:VARIANT")
            }
            var pooling = model.config.pooling
            var s = ScoringConfig()
            s.positives = size.positives
            s.maxLength = size.maxLength
            s.seed = seed
            s.exclusionDepth = size.exclusionDepth
            s.candidateDepth = size.candidateDepth
            let mods = parts[1] == "base" ? [] : parts[1].split(separator: "+").map(String.init)
            for m in mods {
                func value(_ prefix: String) -> String? { m.hasPrefix(prefix) ? String(m.dropFirst(prefix.count)) : nil }
                if m == "cls" || m == "mean" { pooling = m == "cls" ? .cls : .mean }
                else if let v = value("tau"), let t = Double(v) { s.temperature = t }
                else if let v = value("pos"), let n = Int(v) { s.positives = n }
                else if let v = value("len"), let n = Int(v) { s.maxLength = n }
                else if let v = value("p"), let p = Float(v) { s.dropout = p }
                else {
                    throw GradNormIRError.invalidInput("--configs: '\(m)' in '\(key)' is not cls, mean, p<dropout>, tau<τ>, pos<n> or len<n>")
                }
            }
            s.maxLength = min(s.maxLength, model.config.maxPositions)
            try s.validate()
            let c = Configuration(candidate: cand, modifiers: mods, pooling: pooling, scoring: s)
            if !out.contains(where: { $0.key == c.key }) { out.append(c) }
        }
        guard !out.isEmpty else { throw GradNormIRError.invalidInput("--configs names no configuration") }
        return out
    }

    /// Seed and size the corpora were built with (`MANIFEST.json` of scripts/build_corpora.py).
    static func manifest(_ dataDir: String) -> (seed: Int, size: Int)? {
        guard let d = FileManager.default.contents(atPath: (dataDir as NSString).appendingPathComponent("MANIFEST.json")),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
              let seed = o["seed"] as? Int, let size = o["size"] as? Int else { return nil }
        return (seed, size)
    }
}
