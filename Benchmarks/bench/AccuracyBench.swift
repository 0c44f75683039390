import Foundation
import GradNormIR
import TransformerLite

/// Section 3: which retriever fits which corpus. For every candidate retriever and default corpus:
/// GradNormIR scores of a seeded sample of documents (scored inside the full corpus index), the
/// threshold from the FAQ reference, the OOD ratio, DRR of the flagged set against all documents,
/// AUROC of GradNormIR and of the embedding baselines at equal budget (recall@k ground truth);
/// then per retriever the Spearman correlation of OOD ratio with actual recall, and per corpus
/// whether the fewest-OOD retriever is the one with the best actual recall.
struct AccuracyBench {
    struct Candidate { let name: String; let folder: String }
    struct Size {
        let name: String, documents: Int, referenceDocuments: Int, positives: Int, maxLength: Int
        let corpora: [String]
    }

    static let allCorpora = ["foldoc", "jargon", "vera", "elements", "devil", "wordnet", "perlfaq", "pythonfaq"]
    static func size(quick: Bool, full: Bool) -> Size {
        if quick { return Size(name: "quick", documents: 4, referenceDocuments: 8, positives: 4, maxLength: 128,
                               corpora: ["jargon", "vera", "pythonfaq"]) }
        if full { return Size(name: "full", documents: 40, referenceDocuments: 60, positives: 16, maxLength: 256,
                              corpora: allCorpora) }
        return Size(name: "default", documents: 10, referenceDocuments: 20, positives: 4, maxLength: 128,
                    corpora: allCorpora)
    }

    let candidates: [Candidate]
    let size: Size
    let dataDir: String
    let k = 10
    let seed: UInt64 = 13

    func run(plotFolder: String) throws -> [String: Any] {
        let reference = (dataDir as NSString).appendingPathComponent("reference")
        var rows: [[String: Any]] = []
        var plotData: [(retriever: String, corpora: [BenchPlots.CorpusResult])] = []
        // results[retriever][corpus] = (oodRatio, corpusRecall)
        var results: [String: [String: (ood: Double, recall: Double)]] = [:]
        var table = Table(["retriever", "corpus", "docs", "scored", "fails", "OOD ratio", "recall@\(k)", "DRR all",
                           "DRR flagged", "AUROC GradNormIR (95% CI)", "AUROC kNN", "AUROC Mahal.", "AUROC IPQ", "docs/s"])
        for cand in candidates {
            note("bench: accuracy, \(cand.name): loading \(cand.folder)")
            let model = try Retriever.load(folder: cand.folder)
            var config = ScoringConfig()
            config.positives = size.positives
            config.maxLength = min(size.maxLength, model.config.maxPositions)
            config.seed = seed
            // Threshold: mean score of a sample of the in-distribution reference.
            let (refDocs, _) = try BEIRDataset.loadCorpus(path: reference)
            let refIndex = try CorpusIndex(documents: refDocs.map(\.fullText), retriever: model, config: config)
            let refScorer = GradNormScorer(retriever: model, corpus: refIndex)
            let refPick = seededSample(count: refDocs.count, sample: size.referenceDocuments, seed: seed)
            var refScores: [Double] = []
            for (j, d) in refPick.enumerated() {
                if let g = refScorer.score(document: d, id: refDocs[d].id).gradNorm { refScores.append(g) }
                note("bench: accuracy, \(cand.name): reference \(j + 1)/\(refPick.count)")
            }
            guard let threshold = Metrics.mean(refScores) else {
                throw GradNormIRError.invalidInput("\(cand.name): no reference document could be scored")
            }
            let refEmbeddings = try model.searchEmbeddings(refDocs.map(\.fullText), maxLength: config.maxLength)
            var perCorpus: [BenchPlots.CorpusResult] = []
            defer { plotData.append((cand.name, perCorpus)) }
            for corpus in size.corpora {
                let folder = (dataDir as NSString).appendingPathComponent(corpus)
                let data = try BEIRDataset.load(folder: folder)
                let start = now()
                let index = try CorpusIndex(documents: data.corpus.map(\.fullText), retriever: model, config: config)
                let scorer = GradNormScorer(retriever: model, corpus: index)
                let pick = seededSample(count: data.corpus.count, sample: size.documents, seed: seed)
                var scores: [String: Double?] = [:]
                for (j, d) in pick.enumerated() {
                    scores[data.corpus[d].id] = scorer.score(document: d, id: data.corpus[d].id).gradNorm
                    note("bench: accuracy, \(cand.name) × \(corpus): \(j + 1)/\(pick.count)")
                }
                let rate = Double(pick.count) / (now() - start)
                let flagged = scores.values.compactMap { $0 }.filter { $0 > threshold }.count
                let ood = Double(flagged) / Double(max(1, pick.count))
                let report = try Evaluation.evaluate(dataset: data, retriever: model, scores: scores,
                                                     reference: refEmbeddings, threshold: threshold, k: k,
                                                     maxLength: config.maxLength, seed: seed,
                                                     documentEmbeddings: (0..<index.count).map { index.index.vector($0) })
                results[cand.name, default: [:]][corpus] = (ood, report.corpusRecall)
                perCorpus.append(BenchPlots.CorpusResult(corpus: corpus, threshold: threshold, ood: ood,
                                                         recall: report.corpusRecall, outcomes: report.outcomes))
                let by = Dictionary(uniqueKeysWithValues: report.detectors.map { ($0.name, $0) })
                func au(_ n: String, ci: Bool = false) -> String {
                    guard let d = by[n], let a = d.auroc else { return "–" }
                    let interval = ci ? d.aurocCI.map { " (\(fmt($0.low, 2))–\(fmt($0.high, 2)))" } ?? "" : ""
                    return fmt(a, 2) + interval
                }
                table.add([cand.name, corpus, "\(data.corpus.count)", "\(report.evaluated)", "\(report.failures)",
                           fmt(ood, 2), fmt(report.corpusRecall, 3), report.drrAll.map { fmt($0, 3) } ?? "–",
                           by["GradNormIR"]?.drr.map { fmt($0, 3) } ?? "–", au("GradNormIR", ci: true),
                           au("knn"), au("mahalanobis"), au("ipq"), fmt(rate, 3)])
                var row: [String: Any] = ["retriever": cand.name, "corpus": corpus, "documents": data.corpus.count,
                                          "scored": pick.count, "threshold": threshold, "ood_ratio": ood,
                                          "corpus_recall": report.corpusRecall, "documents_per_s": rate]
                row["evaluation"] = (try? JSONSerialization.jsonObject(with: Data(report.json.utf8))) ?? [:]
                row["documents_detail"] = report.outcomes.map { ["id": $0.id, "gradnorm": $0.gradNorm, "recall": $0.recall] }
                rows.append(row)
            }
        }
        // Per retriever: does a higher OOD ratio go with lower recall?
        var corr = Table(["retriever", "corpora", "Spearman(OOD ratio, recall@\(k))"])
        var corrJSON: [[String: Any]] = []
        for cand in candidates {
            guard let r = results[cand.name] else { continue }
            let keys = size.corpora.filter { r[$0] != nil }
            let s = Metrics.spearman(keys.map { r[$0]!.ood }, keys.map { r[$0]!.recall })
            corr.add([cand.name, "\(keys.count)", s.map { fmt($0, 2) } ?? "–"])
            corrJSON.append(["retriever": cand.name, "spearman": s ?? NSNull()])
        }
        // Per corpus: is the fewest-OOD retriever the one with the best recall?
        var sel = Table(["corpus", "fewest OOD", "best recall@\(k)", "match"])
        var matches = 0, decided = 0
        var selJSON: [[String: Any]] = []
        for corpus in size.corpora {
            let cands = candidates.compactMap { c in results[c.name]?[corpus].map { (c.name, $0) } }
            guard cands.count >= 2 else { continue }
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
        var text = """

        ## Detection accuracy: retrievers × corpora (size \(size.name))

        \(size.documents) seeded documents scored per corpus inside the full corpus index; threshold = mean
        score of \(size.referenceDocuments) documents of the FAQ reference (data/corpora/reference, in-distribution for
        the MiniLM retrievers), scored in their own 100-document index; \(size.positives) positives, 4 negatives,
        dropout 0.02, τ 0.05, \(size.maxLength) tokens, seed \(seed); recall@\(k) over each corpus (queries retrieve from
        the documents with a relevant query). Baselines flag as many documents as GradNormIR. Small samples:
        read the intervals.

        \(table.render())

        \(corr.render())

        """
        if !selJSON.isEmpty {
            text += "\n\(sel.render())\n\nSelection accuracy: \(matches)/\(decided) corpora (ties in OOD ratio not counted).\n"
        }
        let plots = try BenchPlots.write(results: plotData, folder: plotFolder)
        text += "\nPlots: " + plots.joined(separator: ", ") + "\n"
        print(text)
        return ["size": size.name, "documents_per_corpus": size.documents, "reference_documents": size.referenceDocuments,
                "positives": size.positives, "max_length": size.maxLength, "seed": seed, "k": k,
                "rows": rows, "spearman": corrJSON, "selection": selJSON,
                "selection_accuracy": decided > 0 ? Double(matches) / Double(decided) : NSNull(),
                "markdown": text]
    }
}
