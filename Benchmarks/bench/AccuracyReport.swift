import Foundation
import GradNormIR

/// Rendering of the accuracy section: the Markdown report (printed and saved as accuracy.md), the
/// section's part of bench.json, and the plots.
extension AccuracyResults {
    /// Writes the plots into `plotFolder`; returns the Markdown report and the JSON object.
    func render(plotFolder: String) throws -> (markdown: String, json: [String: Any]) {
        let size = bench.size, k = bench.k, seed = bench.seed
        var rows: [[String: Any]] = []
        var configJSON: [[String: Any]] = []
        var plotData: [(retriever: String, slug: String, corpora: [BenchPlots.CorpusResult])] = []
        var settings = MarkdownTable(["configuration", "key", "checkpoint", "pooling", "dropout p", "τ", "positives", "max length",
                                      "reference scored", "threshold", "time (s)"])
        var table = MarkdownTable(["configuration", "corpus", "docs", "scored", "fails", "OOD ratio", "recall@\(k)", "DRR all",
                                   "DRR flagged", "AUROC GradNormIR (95% CI)", "AUROC kNN", "AUROC Mahal.", "AUROC IPQ",
                                   "AUROC combined", "AUROC density", "s/doc"])
        for run in runs {
            let cfg = run.configuration
            for row in run.corpora {
                let report = row.report
                let by = Dictionary(uniqueKeysWithValues: report.detectors.map { ($0.name, $0) })
                func au(_ n: String, ci: Bool = false) -> String {
                    guard let d = by[n], let a = d.auroc else { return "–" }
                    let interval = ci ? d.aurocCI.map { " (\(fmt($0.low, 2))–\(fmt($0.high, 2)))" } ?? "" : ""
                    return fmt(a, 2) + interval
                }
                table.add([cfg.name, row.corpus, "\(row.documents)", "\(report.evaluated)", "\(report.failures)",
                           fmt(row.oodRatio, 2), fmt(report.corpusRecall, 3), report.drrAll.map { fmt($0, 3) } ?? "–",
                           by["GradNormIR"]?.drr.map { fmt($0, 3) } ?? "–", au("GradNormIR", ci: true),
                           au("knn"), au("mahalanobis"), au("ipq"), au("combined"), au("density"),
                           fmt(row.secondsPerDocument, 2)])
                rows.append([
                    "configuration": cfg.name, "key": cfg.key, "retriever": cfg.candidate.name,
                    "corpus": row.corpus, "documents": row.documents, "scored": row.scored, "threshold": run.threshold,
                    "ood_ratio": row.oodRatio, "corpus_recall": report.corpusRecall,
                    "seconds_per_document": row.secondsPerDocument,
                    "seconds": ["index": row.indexSeconds, "scoring": row.scoringSeconds, "evaluation": row.evaluationSeconds],
                    "evaluation": Self.jsonObject(report),
                    "documents_detail": report.outcomes.map { ["id": $0.id, "gradnorm": $0.gradNorm, "recall": $0.recall] },
                ])
            }
            plotData.append((cfg.name, cfg.slug, run.corpora.map {
                BenchPlots.CorpusResult(corpus: $0.corpus, threshold: run.threshold, ood: $0.oodRatio,
                                        recall: $0.report.corpusRecall, outcomes: $0.report.outcomes)
            }))
            let s = cfg.scoring
            settings.add([cfg.name, cfg.key, cfg.candidate.name, cfg.pooling.rawValue, "\(s.dropout)", "\(s.temperature)",
                          "\(s.positives)", "\(s.maxLength)", "\(run.referenceScored)/\(run.referenceSampled)",
                          fmt(run.threshold, 2), fmt(run.seconds, 0)])
            configJSON.append(["key": cfg.key, "name": cfg.name, "checkpoint": cfg.candidate.name, "folder": cfg.candidate.folder,
                               "base": cfg.isBase, "pooling": cfg.pooling.rawValue, "dropout": Double("\(s.dropout)") ?? Double(s.dropout),
                               "temperature": s.temperature, "positives": s.positives, "negatives": s.negatives,
                               "max_length": s.maxLength, "exclusion_depth": size.exclusionDepth,
                               "candidate_depth": size.candidateDepth, "skip_first_negative": s.skipFirstNegative,
                               "seed": s.seed, "reference_sampled": run.referenceSampled, "reference_scored": run.referenceScored,
                               "threshold": run.threshold, "seconds": run.seconds, "reference_scoring_seconds": run.referenceSeconds])
        }
        // results[config key][corpus] = (OOD ratio, corpus recall)
        var results: [String: [String: (ood: Double, recall: Double)]] = [:]
        for run in runs {
            for row in run.corpora { results[run.configuration.key, default: [:]][row.corpus] = (row.oodRatio, row.report.corpusRecall) }
        }
        let configs = runs.map(\.configuration)

        // Per configuration: does a higher OOD ratio go with lower recall?
        var corr = MarkdownTable(["configuration", "corpora", "Spearman(OOD ratio, recall@\(k))"])
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
        var sel = MarkdownTable(["corpus", "fewest OOD", "best recall@\(k)", "match"])
        var matches = 0, decided = 0
        var selJSON: [[String: Any]] = []
        // Among all configurations: the one the method recommends (fewest OOD documents), and the
        // retrieval settings (checkpoint, pooling, length) with the best actual recall.
        var rec = MarkdownTable(["corpus", "recommended (fewest OOD)", "OOD ratio", "its recall@\(k)", "best recall@\(k) (retrieval settings)", "match"])
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

        let sizes = corpora.map { corpusSizes[$0]! }
        let sizeRange = sizes.min() == sizes.max() ? "\(sizes[0])" : "\(sizes.min()!)–\(sizes.max()!)"
        let corpusList = corpora.map { "\($0) \(corpusSizes[$0]!)" }.joined(separator: ", ")
        let manifest = AccuracyBench.manifest(bench.dataDir)
        var text = """

        ## Detection accuracy: retriever configurations × corpora (size \(size.name))

        Sample sizes: \(size.documents) seeded documents scored per corpus, inside the full corpus index
        (\(sizeRange) documents: \(corpusList)); threshold = mean score of \(size.referenceDocuments) seeded
        documents of the FAQ reference (\(referenceFolder), \(referenceIndexDocuments) documents, in-distribution for the MiniLM
        retrievers), scored by each configuration in its own reference index; 4 negatives per record, skip-first on;
        seed \(seed) (document samples and dropout masks)\(manifest.map { "; corpora built with seed \($0.seed), size \($0.size)" } ?? "").
        Depth regime (same for the reference and every corpus, so thresholds and corpus scores are comparable):
        N(d) = \(size.exclusionDepth), N(x) = \(size.candidateDepth) fixed, instead of the size rule (which would give the 100-document
        reference a shallower N(d) than the corpora); index sizes still differ (reference \(referenceIndexDocuments), corpora as above).
        recall@\(k) over each corpus (queries retrieve from the documents with a relevant query). Baselines flag as many
        documents as GradNormIR. Small samples: read the intervals. Accuracy section: \(fmt(seconds, 0)) s
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
        var out: [String: Any] = [
            "size": size.name, "documents_per_corpus": size.documents, "reference_documents": size.referenceDocuments,
            "reference_index_documents": referenceIndexDocuments, "positives": size.positives, "max_length": size.maxLength,
            "seed": seed, "k": k, "data": bench.dataDir,
            "regime": ["exclusion_depth": size.exclusionDepth, "candidate_depth": size.candidateDepth,
                       "rule": "fixed depths for the reference and every corpus (not the size rule)",
                       "reference_index_documents": referenceIndexDocuments,
                       "corpus_index_documents": corpusSizes],
            "configurations": configJSON, "rows": rows, "spearman": corrJSON,
            "selection": selJSON, "selection_accuracy": decided > 0 ? Double(matches) / Double(decided) : NSNull(),
            "recommendation": recJSON,
            "recommendation_accuracy": recDecided > 0 ? Double(recMatches) / Double(recDecided) : NSNull(),
            "seconds": seconds, "markdown": text,
        ]
        if let m = manifest { out["corpora_manifest"] = ["seed": m.seed, "size": m.size] }
        return (text, out)
    }

    /// An evaluation report as a JSON object for bench.json (the fields of `EvaluationReport.json`).
    static func jsonObject(_ r: EvaluationReport) -> [String: Any] {
        func num(_ x: Double?) -> Any { x.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        return ["dataset": r.dataset, "documents": r.documents, "evaluated": r.evaluated, "failures": r.failures,
                "k": r.k, "mean_recall": num(r.meanRecall), "corpus_recall": num(r.corpusRecall),
                "drr_all": num(r.drrAll), "threshold": num(r.threshold),
                "detectors": r.detectors.map { d -> [String: Any] in
                    ["name": d.name, "flagged": d.flagged, "drr": num(d.drr), "auroc": num(d.auroc),
                     "auroc_ci95": d.aurocCI.map { [num($0.low), num($0.high)] } ?? NSNull()]
                }]
    }
}
