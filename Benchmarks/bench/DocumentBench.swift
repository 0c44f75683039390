import Foundation
import GradNormIR
import TransformerLite

/// The per-document section: what a user pays per scored document — the index of the corpus, then
/// per document its query forward, the dropout positives, the hard negatives, the records'
/// forwards and backwards and the mean norm — against the plain PyTorch procedure on the same
/// corpus and documents (Benchmarks/torch_document_bench.py, one document at a time with
/// PyTorch's intra-op threads, records padded as the authors' code pads them). The engine shares
/// what the method allows: every document's neighbourhood is searched once with the index, the
/// query's forward is computed once per document, and with several threads whole documents run
/// side by side. Scores are compared document by document.
struct DocumentBench {
    let retriever: Retriever
    let dataDir: String
    /// A smoke-check run scores fewer documents.
    let quick: Bool
    /// Whether to run PyTorch's side when torch is importable.
    let torch: Bool
    /// The issue's setting: a dictionary of the default corpora, 8 positives, 256 tokens.
    let corpusName = "jargon"
    var config: ScoringConfig {
        var c = ScoringConfig()
        c.positives = 8
        c.maxLength = 256
        return c
    }
    /// Documents timed per thread count, spread over the corpus.
    var documentCount: Int { quick ? 2 : 8 }

    /// One thread count's measurements: a pair per batch of documents (engine, then PyTorch).
    struct Row {
        let threads: Int
        var engine: [Double] = [], torch: [Double] = []  // seconds per document, batch by batch
        var ratios: [Double] { zip(torch, engine).map { $0 / $1 } }
    }

    func run(threadCounts: [Int]) throws -> [String: Any] {
        let corpusFile = ((dataDir as NSString).appendingPathComponent(corpusName) as NSString).appendingPathComponent("corpus.jsonl")
        let (docs, _) = try BEIRDataset.loadCorpus(path: corpusFile)
        let config = self.config
        let n = docs.count
        let k = min(documentCount, n)  // k documents spread over the corpus, all different
        let picked = (0..<k).map { ($0 * n + n / 2) / k }
        guard k > 0 else { throw GradNormIRError.invalidInput("\(corpusFile) has no documents") }
        let maxThreads = threadCounts.max() ?? 1

        var server: PythonServer?
        if torch, pythonImports("torch") {
            note("bench: per document: starting PyTorch's procedure on \(corpusName) (Benchmarks/torch_document_bench.py --serve)…")
            server = PythonServer(arguments: ["Benchmarks/torch_document_bench.py", "--serve", "--model", retriever.checkpoint.folder,
                                              "--corpus", corpusFile,
                                              "--max-length", "\(config.maxLength)", "--positives", "\(config.positives)",
                                              "--negatives", "\(config.negatives)", "--dropout", "\(config.dropout)",
                                              "--seed", "\(config.seed)"])
            if server == nil { note("bench: the PyTorch script did not start: comparison skipped") }
        }

        // The index: embedded once per run on each side, at the largest thread count.
        note("bench: per document: index of \(n) \(corpusName) documents at \(config.maxLength) tokens…")
        BLAS.setThreads(maxThreads)
        var t0 = now()
        let index = try CorpusIndex(documents: docs.map(\.fullText), retriever: retriever, config: config)
        let engineIndex = now() - t0
        var torchIndex: Double?
        if let s = server {
            torchIndex = s.ask(["op": "index", "threads": maxThreads])?["seconds"] as? Double
            if torchIndex == nil { server = nil; note("bench: PyTorch's index failed: comparison skipped") }
        }

        var rows: [Row] = []
        var engineScores: [Int: DocumentScore] = [:], torchScores: [Int: [String: Any]] = [:]
        for threads in threadCounts {
            BLAS.setThreads(threads)
            let scorer = GradNormScorer(retriever: retriever, corpus: index)
            let batch = GradNormScorer.documentsPerBatch
            note("bench: per document: \(picked.count) documents, \(threads) thread(s), batches of \(batch)\(server == nil ? "" : ", alternating with PyTorch")…")
            // Warm-up: one document on each side, untimed.
            _ = scorer.score(documents: [(picked[0], docs[picked[0]].id)])
            _ = server?.ask(["op": "score", "threads": threads, "documents": [picked[0]]])
            var row = Row(threads: threads)
            for start in stride(from: 0, to: picked.count, by: batch) {
                let chunk = Array(picked[start..<min(picked.count, start + batch)])
                t0 = now()
                let scores = scorer.score(documents: chunk.map { ($0, docs[$0].id) })
                row.engine.append((now() - t0) / Double(chunk.count))
                for (d, s) in zip(chunk, scores) { engineScores[d] = s }
                guard let s = server else { continue }
                guard let answer = s.ask(["op": "score", "threads": threads, "documents": chunk]),
                      let seconds = answer["seconds"] as? Double, let list = answer["scores"] as? [[String: Any]],
                      list.count == chunk.count else {
                    note("bench: PyTorch stopped answering: comparison skipped from here")
                    server = nil
                    continue
                }
                row.torch.append(seconds / Double(chunk.count))
                for (d, obj) in zip(chunk, list) { torchScores[d] = obj }
            }
            if row.torch.count != row.engine.count { row.torch = [] }
            rows.append(row)
        }
        server?.stop()

        // Agreement, outside the timing: the engine's positives, records and scores against PyTorch's.
        let query = RecordGradient(retriever: retriever)
        var samePositives = 0, compared = 0, maxRelative = 0.0
        var perDocument: [[String: Any]] = []
        for d in picked {
            guard let e = engineScores[d] else { continue }
            var entry: [String: Any] = ["index": d, "id": docs[d].id, "records": e.records, "gradnorm": e.gradNorm as Any]
            if let t = torchScores[d] {
                let positives = index.positives(of: d, query: query.encodeQuery(index.tokenIds[d]), pooling: retriever.config.pooling)
                let same = positives == (t["positives"] as? [Int] ?? [])
                entry["same_positives"] = same
                entry["torch_gradnorm"] = t["gradnorm"] as Any
                entry["torch_records"] = t["records"] as Any
                compared += 1
                if same { samePositives += 1 }
                if let a = e.gradNorm, let b = t["gradnorm"] as? Double, same {
                    let rel = abs(a - b) / max(abs(b), 1e-12)
                    entry["relative_difference"] = rel
                    maxRelative = max(maxRelative, rel)
                }
            }
            perDocument.append(entry)
        }

        let records = picked.compactMap { engineScores[$0]?.records }
        var table = MarkdownTable(["threads", "documents", "engine s/document", "PyTorch s/document",
                                   "speed-up vs PyTorch (median of batch pairs)", "pair range"])
        var json: [String: Any] = [
            "corpus": corpusName, "corpus_documents": n, "positives": config.positives, "max_length": config.maxLength,
            "documents": picked.map { docs[$0].id }, "mean_records_per_document": Double(records.reduce(0, +)) / Double(max(1, records.count)),
            "index_threads": maxThreads, "engine_index_seconds": engineIndex, "per_document": perDocument,
        ]
        if let torchIndex { json["torch_index_seconds"] = torchIndex; json["index_speedup_vs_torch"] = torchIndex / engineIndex }
        var rowJSON: [[String: Any]] = []
        for r in rows {
            let ratios = r.ratios
            table.add(["\(r.threads)", "\(picked.count)", fmt(median(r.engine), 2), ratios.isEmpty ? "–" : fmt(median(r.torch), 2),
                       ratios.isEmpty ? "–" : fmt(median(ratios), 2) + "×",
                       ratios.isEmpty ? "–" : fmt(ratios.min()!, 2) + "–" + fmt(ratios.max()!, 2)])
            var entry: [String: Any] = ["threads": r.threads, "seconds_per_document": median(r.engine), "engine_seconds": r.engine]
            if !ratios.isEmpty {
                entry["torch_seconds_per_document"] = median(r.torch)
                entry["torch_seconds"] = r.torch
                entry["speedup_vs_torch"] = median(ratios)
                entry["speedup_vs_torch_range"] = [ratios.min()!, ratios.max()!]
            }
            rowJSON.append(entry)
        }
        json["rows"] = rowJSON
        if compared > 0 {
            json["same_positives"] = samePositives
            json["compared"] = compared
            json["max_relative_score_difference"] = maxRelative
        }

        print("")
        print("## Per document: index, positives, negatives, records, norm (\(corpusName), \(config.positives) positives, \(config.maxLength) tokens)")
        print("")
        print("The engine scores a batch of documents (one on 1 thread; two per thread, side by side, with more), then")
        print("PyTorch's plain procedure (Benchmarks/torch_document_bench.py) scores the same documents one after another")
        print("with its intra-op threads; the speed-up is the median of the per-batch ratios (seconds per document).")
        print("The engine searches every neighbourhood once with the index and computes each document's query forward once;")
        print("PyTorch searches per document and positive and pads each record to its longest sequence, as the authors' code.")
        print("Mean records per document: \(fmt(json["mean_records_per_document"] as! Double, 1)).")
        print("")
        print(table.render())
        print("")
        print("Index of the \(n) documents (\(maxThreads) thread(s), embedded once per run on each side): engine \(fmt(engineIndex, 1)) s"
              + (torchIndex.map { ", PyTorch \(fmt($0, 1)) s (\(fmt($0 / engineIndex, 2))×)" } ?? ""))
        if compared > 0 {
            print("Agreement: the same positives for \(samePositives) of \(compared) documents; where they are the same, the largest relative")
            print("score difference is \(String(format: "%.1e", maxRelative)) (float32 rounding of two implementations).")
        } else {
            print("PyTorch: not measured (--quick, --no-torch, or python3 cannot import torch).")
        }
        return json
    }
}
