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
    /// `--configs`: keys such as `L6:base,L3:cls+tau0.1`, or `default` / `all`.
    let configSpec: String?
    /// `--corpora`: a subset of the size's corpora.
    let corporaSpec: String?
    let k = 10
    let seed: UInt64 = 13

    /// The configurations a spec names. `all` = every candidate × every variant of the size;
    /// `default` = the size's list. Modifiers: `cls`/`mean`, `p<dropout>`, `tau<τ>`, `pos<n>`, `len<n>`.
    func configurations(models: [String: Retriever]) throws -> [Configuration] {
        var keys: [String] = []
        let available = Set(candidates.map(\.short))
        let all = candidates.flatMap { c in size.variants.map { "\(c.short):\($0)" } }
        for item in (configSpec ?? "default").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
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

    func run(plotFolder: String) throws -> [String: Any] {
        let started = now()
        let reference = (dataDir as NSString).appendingPathComponent("reference")
        var models: [String: Retriever] = [:]
        for c in candidates {
            note("bench: accuracy: loading \(c.folder)")
            models[c.short] = try Retriever.load(folder: c.folder)
        }
        let configs = try configurations(models: models)
        var corpora = size.corpora
        if let spec = corporaSpec {
            corpora = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for c in corpora where !FileManager.default.fileExists(atPath: (dataDir as NSString).appendingPathComponent(c)) {
                throw GradNormIRError.invalidInput("--corpora: no corpus '\(c)' in \(dataDir)")
            }
        }
        note("bench: accuracy: \(configs.count) configurations × \(corpora.count) corpora: " + configs.map(\.key).joined(separator: ", "))

        // Data, read once.
        let (refDocs, _) = try BEIRDataset.loadCorpus(path: reference)
        var datasets: [String: BEIRDataset] = [:]
        for corpus in corpora { datasets[corpus] = try BEIRDataset.load(folder: (dataDir as NSString).appendingPathComponent(corpus)) }
        let smallest = ([refDocs.count] + corpora.map { datasets[$0]!.corpus.count }).min()!
        guard size.candidateDepth <= smallest - 1, size.exclusionDepth < size.candidateDepth else {
            throw GradNormIRError.invalidInput(
                "the depth regime N(d) = \(size.exclusionDepth), N(x) = \(size.candidateDepth) needs every index (reference and corpora) to have more than \(size.candidateDepth) documents; the smallest has \(smallest)")
        }

        // Retrievers per (checkpoint, pooling); indexes per (retrieval settings, corpus): the
        // embeddings do not depend on dropout, τ or positives, so configurations share them.
        var retrievers: [String: Retriever] = [:]
        var indexes: [String: CorpusIndex] = [:]
        func retriever(_ c: Configuration) throws -> Retriever {
            let key = "\(c.candidate.short)|\(c.pooling.rawValue)"
            if let r = retrievers[key] { return r }
            let r = try models[c.candidate.short]!.withPooling(c.pooling)
            retrievers[key] = r
            return r
        }
        func index(_ c: Configuration, _ name: String, _ texts: [String], _ model: Retriever) throws -> CorpusIndex {
            let key = c.retrieval + "|" + name
            if let base = indexes[key] { return try CorpusIndex(reusing: base, config: c.scoring) }
            let i = try CorpusIndex(documents: texts, retriever: model, config: c.scoring)
            indexes[key] = i
            return i
        }

        var rows: [[String: Any]] = []
        var configJSON: [[String: Any]] = []
        var plotData: [(retriever: String, slug: String, corpora: [BenchPlots.CorpusResult])] = []
        // results[config key][corpus] = (oodRatio, corpusRecall)
        var results: [String: [String: (ood: Double, recall: Double)]] = [:]
        var settings = Table(["configuration", "key", "checkpoint", "pooling", "dropout p", "τ", "positives", "max length",
                              "reference scored", "threshold", "time (s)"])
        var table = Table(["configuration", "corpus", "docs", "scored", "fails", "OOD ratio", "recall@\(k)", "DRR all",
                           "DRR flagged", "AUROC GradNormIR (95% CI)", "AUROC kNN", "AUROC Mahal.", "AUROC IPQ", "s/doc"])
        for cfg in configs {
            let t0 = now()
            let model = try retriever(cfg)
            // Threshold: mean score of a seeded sample of the in-distribution reference, scored by
            // this configuration with the run's fixed depths (the corpora's regime).
            let refIndex = try index(cfg, "reference", refDocs.map(\.fullText), model)
            let refStart = now()
            let refScorer = GradNormScorer(retriever: model, corpus: refIndex)
            let refPick = seededSample(count: refDocs.count, sample: size.referenceDocuments, seed: seed)
            var refScores: [Double] = []
            for (j, d) in refPick.enumerated() {
                if let g = refScorer.score(document: d, id: refDocs[d].id).gradNorm { refScores.append(g) }
                note("bench: accuracy, \(cfg.key): reference \(j + 1)/\(refPick.count)")
            }
            let refSeconds = now() - refStart
            guard let threshold = Metrics.mean(refScores) else {
                throw GradNormIRError.invalidInput("\(cfg.key): no reference document could be scored")
            }
            let refEmbeddings = (0..<refIndex.count).map { refIndex.index.vector($0) }
            var perCorpus: [BenchPlots.CorpusResult] = []
            for corpus in corpora {
                let data = datasets[corpus]!
                let indexStart = now()
                let corpusIndex = try index(cfg, corpus, data.corpus.map(\.fullText), model)
                let start = now()
                let scorer = GradNormScorer(retriever: model, corpus: corpusIndex)
                let pick = seededSample(count: data.corpus.count, sample: size.documents, seed: seed)
                var scores: [String: Double?] = [:]
                for (j, d) in pick.enumerated() {
                    scores[data.corpus[d].id] = scorer.score(document: d, id: data.corpus[d].id).gradNorm
                    note("bench: accuracy, \(cfg.key) × \(corpus): \(j + 1)/\(pick.count)")
                }
                let scoring = now() - start
                let perDoc = scoring / Double(max(1, pick.count))
                let flagged = scores.values.compactMap { $0 }.filter { $0 > threshold }.count
                let ood = Double(flagged) / Double(max(1, pick.count))
                let report = try Evaluation.evaluate(dataset: data, retriever: model, scores: scores,
                                                     reference: refEmbeddings, threshold: threshold, k: k,
                                                     maxLength: cfg.scoring.maxLength, seed: seed,
                                                     documentEmbeddings: (0..<corpusIndex.count).map { corpusIndex.index.vector($0) })
                let evaluation = now() - start - scoring
                results[cfg.key, default: [:]][corpus] = (ood, report.corpusRecall)
                perCorpus.append(BenchPlots.CorpusResult(corpus: corpus, threshold: threshold, ood: ood,
                                                         recall: report.corpusRecall, outcomes: report.outcomes))
                let by = Dictionary(uniqueKeysWithValues: report.detectors.map { ($0.name, $0) })
                func au(_ n: String, ci: Bool = false) -> String {
                    guard let d = by[n], let a = d.auroc else { return "–" }
                    let interval = ci ? d.aurocCI.map { " (\(fmt($0.low, 2))–\(fmt($0.high, 2)))" } ?? "" : ""
                    return fmt(a, 2) + interval
                }
                table.add([cfg.name, corpus, "\(data.corpus.count)", "\(report.evaluated)", "\(report.failures)",
                           fmt(ood, 2), fmt(report.corpusRecall, 3), report.drrAll.map { fmt($0, 3) } ?? "–",
                           by["GradNormIR"]?.drr.map { fmt($0, 3) } ?? "–", au("GradNormIR", ci: true),
                           au("knn"), au("mahalanobis"), au("ipq"), fmt(perDoc, 2)])
                var row: [String: Any] = ["configuration": cfg.name, "key": cfg.key, "retriever": cfg.candidate.name,
                                          "corpus": corpus, "documents": data.corpus.count,
                                          "scored": pick.count, "threshold": threshold, "ood_ratio": ood,
                                          "corpus_recall": report.corpusRecall, "seconds_per_document": perDoc,
                                          "seconds": ["index": start - indexStart, "scoring": scoring, "evaluation": evaluation]]
                row["evaluation"] = (try? JSONSerialization.jsonObject(with: Data(report.json.utf8))) ?? [:]
                row["documents_detail"] = report.outcomes.map { ["id": $0.id, "gradnorm": $0.gradNorm, "recall": $0.recall] }
                rows.append(row)
            }
            plotData.append((cfg.name, cfg.slug, perCorpus))
            let seconds = now() - t0
            let s = cfg.scoring
            settings.add([cfg.name, cfg.key, cfg.candidate.name, cfg.pooling.rawValue, "\(s.dropout)", "\(s.temperature)",
                          "\(s.positives)", "\(s.maxLength)", "\(refScores.count)/\(refPick.count)", fmt(threshold, 2), fmt(seconds, 0)])
            configJSON.append(["key": cfg.key, "name": cfg.name, "checkpoint": cfg.candidate.name, "folder": cfg.candidate.folder,
                               "base": cfg.isBase, "pooling": cfg.pooling.rawValue, "dropout": Double("\(s.dropout)") ?? Double(s.dropout),
                               "temperature": s.temperature, "positives": s.positives, "negatives": s.negatives,
                               "max_length": s.maxLength, "exclusion_depth": size.exclusionDepth,
                               "candidate_depth": size.candidateDepth, "skip_first_negative": s.skipFirstNegative,
                               "seed": s.seed, "reference_sampled": refPick.count, "reference_scored": refScores.count,
                               "threshold": threshold, "seconds": seconds, "reference_scoring_seconds": refSeconds])
        }

        // Per configuration: does a higher OOD ratio go with lower recall?
        var corr = Table(["configuration", "corpora", "Spearman(OOD ratio, recall@\(k))"])
        var corrJSON: [[String: Any]] = []
        for cfg in configs {
            guard let r = results[cfg.key] else { continue }
            let keys = corpora.filter { r[$0] != nil }
            let s = Metrics.spearman(keys.map { r[$0]!.ood }, keys.map { r[$0]!.recall })
            corr.add([cfg.name, "\(keys.count)", s.map { fmt($0, 2) } ?? "–"])
            corrJSON.append(["key": cfg.key, "configuration": cfg.name, "spearman": s ?? NSNull()])
        }

        // Per corpus, among the checkpoints (each as shipped, its base configuration): is the
        // fewest-OOD checkpoint the one with the best recall?
        let bases = configs.filter(\.isBase)
        var sel = Table(["corpus", "fewest OOD", "best recall@\(k)", "match"])
        var matches = 0, decided = 0
        var selJSON: [[String: Any]] = []
        // Among all configurations: the one the method recommends (fewest OOD documents), and the
        // retrieval settings (checkpoint, pooling, length) with the best actual recall.
        var rec = Table(["corpus", "recommended (fewest OOD)", "OOD ratio", "its recall@\(k)", "best recall@\(k) (retrieval settings)", "match"])
        var recJSON: [[String: Any]] = []
        var recMatches = 0, recDecided = 0
        for corpus in corpora {
            let cands = bases.compactMap { c in results[c.key]?[corpus].map { (c.candidate.name, $0) } }
            if cands.count >= 2 {
                let minOOD = cands.map(\.1.ood).min()!, maxRecall = cands.map(\.1.recall).max()!
                let fewest = cands.filter { $0.1.ood == minOOD }.map(\.0)
                let best = cands.filter { $0.1.recall == maxRecall }.map(\.0)
                // A tie in OOD ratio selects nothing: it is reported and not counted.
                let verdict: String
                if fewest.count > 1 {
                    verdict = "tie"
                } else {
                    decided += 1
                    let ok = best.contains(fewest[0])
                    if ok { matches += 1 }
                    verdict = ok ? "yes" : "no"
                }
                sel.add([corpus, fewest.joined(separator: " = "), best.joined(separator: " = "), verdict])
                selJSON.append(["corpus": corpus, "fewest_ood": fewest, "best_recall": best, "verdict": verdict])
            }
            let all = configs.compactMap { c in results[c.key]?[corpus].map { (c, $0) } }
            guard !all.isEmpty else { continue }
            let minOOD = all.map(\.1.ood).min()!, maxRecall = all.map(\.1.recall).max()!
            let recommended = all.filter { $0.1.ood == minOOD }
            var bestRetrieval: [String] = []
            for (c, r) in all where r.recall == maxRecall && !bestRetrieval.contains(c.retrieval) { bestRetrieval.append(c.retrieval) }
            let hits = recommended.filter { bestRetrieval.contains($0.0.retrieval) }.count
            let verdict = hits == recommended.count ? "yes" : hits == 0 ? "no" : "tie"
            if verdict != "tie" { recDecided += 1; if verdict == "yes" { recMatches += 1 } }
            rec.add([corpus, recommended.map(\.0.name).joined(separator: " = "), fmt(minOOD, 2),
                     recommended.map { fmt($0.1.recall, 3) }.joined(separator: " / "),
                     bestRetrieval.joined(separator: " = ") + " (\(fmt(maxRecall, 3)))", verdict])
            recJSON.append(["corpus": corpus, "recommended": recommended.map(\.0.key), "ood_ratio": minOOD,
                            "recommended_recall": recommended.map(\.1.recall), "best_recall_retrieval": bestRetrieval,
                            "best_recall": maxRecall, "verdict": verdict])
        }

        let corpusSizes = corpora.map { "\($0) \(datasets[$0]!.corpus.count)" }.joined(separator: ", ")
        let manifest = Self.manifest(dataDir)
        let total = now() - started
        var text = """

        ## Detection accuracy: retriever configurations × corpora (size \(size.name))

        Sample sizes: \(size.documents) seeded documents scored per corpus, inside the full corpus index
        (\(corpusSize(corpora, datasets)) documents: \(corpusSizes)); threshold = mean score of \(size.referenceDocuments) seeded
        documents of the FAQ reference (\(reference), \(refDocs.count) documents, in-distribution for the MiniLM
        retrievers), scored by each configuration in its own reference index; 4 negatives per record, skip-first on;
        seed \(seed) (document samples and dropout masks)\(manifest.map { "; corpora built with seed \($0.seed), size \($0.size)" } ?? "").
        Depth regime (same for the reference and every corpus, so thresholds and corpus scores are comparable):
        N(d) = \(size.exclusionDepth), N(x) = \(size.candidateDepth) fixed, instead of the size rule (which would give the 100-document
        reference a shallower N(d) than the corpora); index sizes still differ (reference \(refDocs.count), corpora as above).
        recall@\(k) over each corpus (queries retrieve from the documents with a relevant query). Baselines flag as many
        documents as GradNormIR. Small samples: read the intervals. Accuracy section: \(fmt(total, 0)) s
        on \(ProcessInfo.processInfo.activeProcessorCount) cores (shared machine: timings may be inflated by other work).

        \(settings.render())

        \(table.render())

        \(corr.render())

        """
        if !selJSON.isEmpty {
            text += "\nAmong the checkpoints (each in its base configuration):\n\n\(sel.render())\n\n"
                + "Selection accuracy: \(matches)/\(decided) corpora (ties in OOD ratio not counted).\n"
        }
        text += "\nRecommended configuration per corpus (the method's rule: fewest OOD documents; recall@\(k) depends only on"
            + " checkpoint, pooling and length):\n\n\(rec.render())\n\n"
            + "Recommendation matches the best recall on \(recMatches)/\(recDecided) corpora (mixed ties not counted).\n"
        let plots = try BenchPlots.write(results: plotData, folder: plotFolder)
        text += "\nPlots: " + plots.joined(separator: ", ") + "\n"
        print(text)
        var out: [String: Any] = [
            "size": size.name, "documents_per_corpus": size.documents, "reference_documents": size.referenceDocuments,
            "reference_index_documents": refDocs.count, "positives": size.positives, "max_length": size.maxLength,
            "seed": seed, "k": k, "data": dataDir,
            "regime": ["exclusion_depth": size.exclusionDepth, "candidate_depth": size.candidateDepth,
                       "rule": "fixed depths for the reference and every corpus (not the size rule)",
                       "reference_index_documents": refDocs.count,
                       "corpus_index_documents": Dictionary(uniqueKeysWithValues: corpora.map { ($0, datasets[$0]!.corpus.count) })],
            "configurations": configJSON, "rows": rows, "spearman": corrJSON,
            "selection": selJSON, "selection_accuracy": decided > 0 ? Double(matches) / Double(decided) : NSNull(),
            "recommendation": recJSON,
            "recommendation_accuracy": recDecided > 0 ? Double(recMatches) / Double(recDecided) : NSNull(),
            "seconds": total, "markdown": text,
        ]
        if let m = manifest { out["corpora_manifest"] = ["seed": m.seed, "size": m.size] }
        return out
    }

    private func corpusSize(_ corpora: [String], _ d: [String: BEIRDataset]) -> String {
        let n = corpora.map { d[$0]!.corpus.count }
        return n.min() == n.max() ? "\(n[0])" : "\(n.min()!)–\(n.max()!)"
    }

    /// Seed and size the corpora were built with (`MANIFEST.json` of scripts/build_corpora.py).
    static func manifest(_ dataDir: String) -> (seed: Int, size: Int)? {
        guard let d = FileManager.default.contents(atPath: (dataDir as NSString).appendingPathComponent("MANIFEST.json")),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
              let seed = o["seed"] as? Int, let size = o["size"] as? Int else { return nil }
        return (seed, size)
    }
}
