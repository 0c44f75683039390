import Foundation
import GradNormIR

/// What the accuracy section measured: per configuration its threshold and, per corpus, the OOD
/// ratio and the evaluation against actual recall. Rendering is `AccuracyResults.render`.
struct AccuracyResults {
    /// One configuration on one corpus.
    struct CorpusRow {
        let corpus: String
        /// Documents in the corpus, and documents sampled for scoring.
        let documents: Int
        let scored: Int
        let oodRatio: Double
        let report: EvaluationReport
        let secondsPerDocument: Double
        let indexSeconds: Double, scoringSeconds: Double, evaluationSeconds: Double
    }

    /// One configuration: its threshold from the reference and its corpora.
    struct ConfigurationRun {
        let configuration: AccuracyBench.Configuration
        let referenceSampled: Int
        let referenceScored: Int
        let threshold: Double
        var corpora: [CorpusRow]
        let seconds: Double
        let referenceSeconds: Double
    }

    let bench: AccuracyBench
    let corpora: [String]
    /// Documents per corpus index, and in the reference index.
    let corpusSizes: [String: Int]
    let referenceIndexDocuments: Int
    let referenceFolder: String
    let runs: [ConfigurationRun]
    /// The section's wall-clock seconds (rendering and plots excluded).
    let seconds: Double
}

extension AccuracyBench {
    /// Scores, thresholds and evaluates every configuration on every corpus.
    func run() throws -> AccuracyResults {
        let started = now()
        let reference = (dataDir as NSString).appendingPathComponent("reference")
        var models: [String: Retriever] = [:]
        for c in candidates {
            note("bench: accuracy: loading \(c.folder)")
            models[c.short] = try Retriever.load(folder: c.folder)
        }
        let configs = try configurations(models: models)
        let corpora = corporaList ?? size.corpora
        for c in corpora where !FileManager.default.fileExists(atPath: (dataDir as NSString).appendingPathComponent(c)) {
            throw GradNormIRError.invalidInput("--corpora: no corpus '\(c)' in \(dataDir)")
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
        func index(_ c: Configuration, _ name: String, _ documents: [Document], _ model: Retriever) throws -> CorpusIndex {
            let key = c.retrieval + "|" + name
            if let base = indexes[key] { return try CorpusIndex(reusing: base, config: c.scoring) }
            let texts = documents.map(\.fullText)
            let i: CorpusIndex
            if let indexFolder {
                // Built once (resumable), then read: the same embeddings as computing them here.
                let folder = (indexFolder as NSString).appendingPathComponent(
                    c.retrieval.replacingOccurrences(of: " ", with: "-") + "/" + name)
                let start = now()
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let lock = try OutputLock(path: OutputLock.path(forFolder: folder))
                defer { withExtendedLifetime(lock) {} }
                let built = try EmbeddingIndex.build(documents: documents, corpus: name, retriever: model,
                                                     maxLength: c.scoring.maxLength, folder: folder)
                if built > 0 { note("bench: accuracy: indexed \(name) for \(c.retrieval) in \(fmt(now() - start, 0)) s → \(folder)") }
                let saved = try EmbeddingIndex.load(folder: folder, documents: documents, retriever: model, maxLength: c.scoring.maxLength)
                i = try CorpusIndex(documents: texts, embeddings: saved.embeddings, retriever: model, config: c.scoring)
            } else {
                i = try CorpusIndex(documents: texts, retriever: model, config: c.scoring)
            }
            indexes[key] = i
            return i
        }

        var runs: [AccuracyResults.ConfigurationRun] = []
        for cfg in configs {
            let t0 = now()
            let model = try retriever(cfg)
            // Threshold: mean score of a seeded sample of the in-distribution reference, scored by
            // this configuration with the run's fixed depths (the corpora's regime).
            let refIndex = try index(cfg, "reference", refDocs, model)
            let refStart = now()
            let refScorer = GradNormScorer(retriever: model, corpus: refIndex)
            let refPick = seededSample(count: refDocs.count, sample: size.referenceDocuments, seed: seed)
            note("bench: accuracy, \(cfg.key): scoring \(refPick.count) reference documents…")
            let refScores = refScorer.score(documents: refPick.map { ($0, refDocs[$0].id) }).compactMap(\.gradNorm)
            let refSeconds = now() - refStart
            guard let threshold = Metrics.mean(refScores) else {
                throw GradNormIRError.invalidInput("\(cfg.key): no reference document could be scored")
            }
            let refEmbeddings = (0..<refIndex.count).map { refIndex.index.vector($0) }
            var rows: [AccuracyResults.CorpusRow] = []
            for corpus in corpora {
                let data = datasets[corpus]!
                let indexStart = now()
                let corpusIndex = try index(cfg, corpus, data.corpus, model)
                let start = now()
                let scorer = GradNormScorer(retriever: model, corpus: corpusIndex)
                let pick = seededSample(count: data.corpus.count, sample: size.documents, seed: seed)
                note("bench: accuracy, \(cfg.key) × \(corpus): scoring \(pick.count) documents…")
                var scores: [String: Double?] = [:]
                for s in scorer.score(documents: pick.map { ($0, data.corpus[$0].id) }) { scores[s.id] = s.gradNorm }
                let scoring = now() - start
                let ood = Threshold.oodRatio(pick.map { scores[data.corpus[$0].id] ?? nil }, threshold: threshold)
                let report = try Evaluation.evaluate(dataset: data, retriever: model, scores: scores,
                                                     reference: refEmbeddings, threshold: threshold, k: k,
                                                     maxLength: cfg.scoring.maxLength, seed: seed,
                                                     documentEmbeddings: (0..<corpusIndex.count).map { corpusIndex.index.vector($0) })
                rows.append(AccuracyResults.CorpusRow(
                    corpus: corpus, documents: data.corpus.count, scored: pick.count, oodRatio: ood, report: report,
                    secondsPerDocument: scoring / Double(max(1, pick.count)), indexSeconds: start - indexStart,
                    scoringSeconds: scoring, evaluationSeconds: now() - start - scoring))
            }
            runs.append(AccuracyResults.ConfigurationRun(
                configuration: cfg, referenceSampled: refPick.count, referenceScored: refScores.count,
                threshold: threshold, corpora: rows, seconds: now() - t0, referenceSeconds: refSeconds))
        }
        return AccuracyResults(bench: self, corpora: corpora,
                               corpusSizes: Dictionary(uniqueKeysWithValues: corpora.map { ($0, datasets[$0]!.corpus.count) }),
                               referenceIndexDocuments: refDocs.count, referenceFolder: reference, runs: runs,
                               seconds: now() - started)
    }
}
