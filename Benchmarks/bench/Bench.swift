import ArgumentParser
import Foundation
import CommandLineSupport
import GradNormIR
import TransformerLite

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "GradNormIR bench: sgemm roofline, encoder forward and record throughput, and detection accuracy of retriever configurations on the default corpora.")

    @Option(help: "Model folder (default: $GRADNORMIR_MODEL or models/all-MiniLM-L6-v2).")
    var model: String?
    @Option(help: "Comma-separated BLAS thread counts to measure.",
            transform: CommaList.parser { "'\($0)' is not a positive integer" })
    var threads = CommaList([1, 2])
    @Option(help: "Timed repetitions per figure (the median is reported).")
    var reps: Int = 7
    @Flag(help: "Smoke check: 3 repetitions, fewer record shapes, no PyTorch, a small accuracy run (under 3 minutes).")
    var quick = false
    @Flag(help: "The paper's regime: large corpora (data/corpora-full, `make corpora-full`), 40 documents scored per corpus, 16 positives, 256 tokens, every configuration of both checkpoints (hours on 2 cores).")
    var full = false
    @Option(help: "Folder of the BEIR-style corpora and the reference (default data/corpora, data/corpora-full with --full).")
    var data: String?
    @Option(help: "Retriever configurations of the accuracy section, comma-separated CHECKPOINT:VARIANT keys (checkpoints L6, L3; variant base or modifiers joined by '+': cls, mean, p<dropout>, tau<τ>, pos<n>, len<n>; e.g. L6:base,L6:cls+tau0.1), or 'default' (the size's list) or 'all' (both checkpoints × base, cls, p0.1, tau0.1, pos8, len64 — len128 with --full).",
            transform: CommaList.parser { "'\($0)' is not a configuration key" })
    var configs: CommaList<String>?
    @Option(help: "Comma-separated corpora of the accuracy section (default: the size's list).",
            transform: CommaList.parser { "'\($0)' is not a corpus name" })
    var corpora: CommaList<String>?
    @Option(name: .long, help: "Folder of persisted corpus indexes for the accuracy section: each (checkpoint, pooling, length) × corpus is embedded once into it and read by later runs (e.g. results/indexes for the debdesc corpora). Default: embed every run.")
    var indexFolder: String?
    @Option(help: "Documents scored per corpus in the accuracy section (default: the size's: 3 quick, 10 default, 40 full).")
    var documents: Int?
    @Option(help: "Reference documents scored for each threshold (default: the size's: 6 quick, 20 default, 60 full).")
    var referenceDocuments: Int?
    @Option(help: "Second candidate retriever (skipped when absent).")
    var secondModel: String = "models/paraphrase-MiniLM-L3-v2"
    @Option(help: "Comma-separated sections to run: forward, record, memory, document, accuracy, simulate, search (the record section measures the roofline beside each record and alternates its repetitions with PyTorch's and, round by round, its thread counts; memory — the peak resident set of one 6 × 512-token record in a child process, keeping or recomputing the feed-forward activations, and PyTorch's; document — seconds per scored document on jargon (8 positives, 256 tokens) against PyTorch's plain procedure on the same documents, alternating batch by batch, and the index; simulate — the evolving-corpus replay of `gradnormir simulate`, under 20 minutes — and search — exact top-k of VectorIndex against FAISS's IndexFlatIP on 40k and 1M random unit vectors, FAISS from `pip install faiss-cpu` — run only when named).",
            transform: CommaList.parser { "unknown section '\($0)' (known: \(Section.allCases.map(\.rawValue).joined(separator: ", ")))" })
    var sections = CommaList<Section>([.forward, .record, .memory, .document, .accuracy])
    @Flag(help: "Skip the PyTorch comparison even when torch is importable.")
    var noTorch = false
    @Option(help: "Folder for the JSON results.")
    var out: String = "results"

    /// The bench's sections.
    enum Section: String, CaseIterable, ExpressibleByArgument { case forward, record, memory, document, accuracy, simulate, search }

    func validate() throws {
        guard threads.values.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads: thread counts must be positive") }
        guard !(quick && full) else { throw ValidationError("--quick and --full exclude each other") }
        if let n = documents, n < 1 { throw ValidationError("--documents must be at least 1") }
        if let n = referenceDocuments, n < 1 { throw ValidationError("--reference-documents must be at least 1") }
        // Fail before the timed sections when the accuracy or document section's corpora are missing.
        let needed = [(Section.accuracy, "reference"), (.document, "jargon")].filter { sections.values.contains($0.0) }.map(\.1)
        if needed.contains(where: { !FileManager.default.fileExists(atPath: (dataDir as NSString).appendingPathComponent("\($0)/corpus.jsonl")) }) {
            throw ValidationError(full && data == nil
                ? "--full needs the large corpora in data/corpora-full: run `make corpora-full` first (about 2,500 documents per corpus where the Debian sources allow)"
                : "no corpora in \(dataDir): run `make setup` (or `make corpora`) first")
        }
    }

    /// The corpora folder: `--data`, else the size's default.
    var dataDir: String { data ?? (full ? "data/corpora-full" : "data/corpora") }

    func run() throws {
        #if DEBUG
        // A debug build's timings mean nothing and it runs many times slower: say so at once.
        let args = CommandLine.arguments.dropFirst().map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        FileHandle.standardError.write(Data("""
            bench: this is a debug build (`swift run bench`): its timings would mean nothing and it runs many times slower.
            Run the optimised build (what `make bench` does): swift run -c release bench\(args.isEmpty ? "" : " " + args)

            """.utf8))
        throw ExitCode(2)
        #else
        try runOptimised()
        #endif
    }

    func runOptimised() throws {
        let threadCounts = threads.values
        let reps = quick ? 3 : max(1, self.reps)
        let wanted = Set(sections.values)
        let folder = model ?? Retriever.defaultModelFolder(override: ProcessInfo.processInfo.environment["GRADNORMIR_MODEL"],
                                                           programPath: CommandLine.arguments.first)
        let retriever: Retriever
        do { retriever = try Retriever.load(folder: folder) } catch let e as GradNormIRError {
            throw ValidationError("cannot load the model: \(e.description)")
        }
        let c = retriever.config
        print("# GradNormIR bench")
        print("")
        print("- model: \(folder) (\(c.numLayers) layers, hidden \(c.hiddenSize), \(c.numHeads) heads, FFN \(c.intermediateSize))")
        print("- OpenBLAS: core \(BLAS.coreName); \(BLAS.config)")
        print("- elementwise kernels (GELU, softmax): \(ElementwiseKernels.instructionSet)")
        print("- cores: \(ProcessInfo.processInfo.activeProcessorCount); thread counts measured: \(threadCounts.map(String.init).joined(separator: ", ")) (roofline: OpenBLAS's own threads; engine: that many workers, each on single-threaded OpenBLAS)")
        print("- repetitions: \(reps) timed after 2 warm-ups; every figure is the median")
        print("")

        try verify(retriever)

        var results: [String: Any] = [
            "model": folder, "blas_core": BLAS.coreName, "blas_config": BLAS.config, "reps": reps,
        ]
        let forward = ForwardBench(retriever: retriever, reps: reps)
        if wanted.contains(.forward) {
            results["forward"] = forward.run(threadCounts: threadCounts)
        }
        if wanted.contains(.record) {
            // --quick skips PyTorch (its run alone takes minutes).
            let record = RecordBench(retriever: retriever, reps: reps, quick: quick, forward: forward,
                                     torch: !noTorch && !quick)
            let (rows, contended) = record.run(threadCounts: threadCounts)
            results["record"] = rows
            results["record_contended"] = contended
        }
        if wanted.contains(.memory) {
            let memory = MemoryBench(retriever: retriever, reps: reps, torch: !noTorch && !quick).run()
            results["memory"] = memory
            if let peak = (memory[ActivationMemory.saveAll.rawValue] as? [String: Any])?["peak_rss_mb"] as? Double {
                results["peak_rss_mb_record_6x512"] = peak
            }
        }
        if wanted.contains(.document) {
            do {
                results["document"] = try DocumentBench(retriever: retriever, dataDir: dataDir, quick: quick,
                                                        torch: !noTorch && !quick).run(threadCounts: threadCounts)
            } catch let e as GradNormIRError {
                throw ValidationError("document section: \(e.description)")
            }
        }
        if wanted.contains(.accuracy) {
            BLAS.setThreads(threadCounts.max() ?? 1)
            var candidates = [AccuracyBench.Candidate(short: "L6", name: "all-MiniLM-L6-v2", folder: folder)]
            if FileManager.default.fileExists(atPath: (secondModel as NSString).appendingPathComponent("model.safetensors")) {
                candidates.append(AccuracyBench.Candidate(short: "L3", name: "paraphrase-MiniLM-L3-v2", folder: secondModel))
            } else {
                note("bench: \(secondModel) not found: the accuracy section compares one checkpoint only")
            }
            var size = AccuracyBench.size(quick: quick, full: full)
            if let n = documents { size.documents = n }
            if let n = referenceDocuments { size.referenceDocuments = n }
            let acc = AccuracyBench(candidates: candidates, size: size, dataDir: dataDir,
                                    configKeys: configs?.values, corporaList: corpora?.values, indexFolder: indexFolder)
            do {
                let (markdown, json) = try acc.run().render(plotFolder: (out as NSString).appendingPathComponent("plots"))
                print(markdown)
                results["accuracy"] = json
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                try markdown.write(toFile: (out as NSString).appendingPathComponent("accuracy.md"), atomically: true, encoding: .utf8)
            } catch let e as GradNormIRError {
                throw ValidationError("accuracy section: \(e.description)")
            }
        }

        if wanted.contains(.simulate) {
            BLAS.setThreads(threadCounts.max() ?? 1)
            do {
                results["simulate"] = try SimulateBench.run(model: retriever, dataDir: dataDir, quick: quick, out: out)
            } catch let e as GradNormIRError {
                throw ValidationError("simulate section: \(e.description)")
            }
        }

        if wanted.contains(.search) {
            do {
                results["search"] = try SearchBench(reps: reps, quick: quick).run(threadCounts: threadCounts)
            } catch let e as GradNormIRError {
                throw ValidationError("search section: \(e.description)")
            }
        }

        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let path = (out as NSString).appendingPathComponent("bench.json")
        let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        print("")
        print("JSON written to \(path)")
    }

    /// Verify, then time: the real model must reproduce the DATA.md reference values first.
    func verify(_ r: Retriever) throws {
        let e = try r.embed(["hello world", "The quick brown fox jumps over the lazy dog."])
        let expected: [Float] = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362, -0.160303]
        let dev = zip(e[0].prefix(6), expected).map { abs($0 - $1) }.max()!
        let cos = zip(e[0], e[1]).map(*).reduce(0, +)
        print("Check before timing: emb(\"hello world\")[:6] max |Δ| vs PyTorch reference = \(String(format: "%.1e", dev)); cos(hello, fox) = \(String(format: "%.6f", cos)) (reference 0.108609)")
        guard r.checkpoint.layout.config.hiddenSize != 384 || (dev < 2e-6 && abs(cos - 0.108609) < 2e-6) else {
            throw ValidationError("the encoder does not reproduce the reference embedding: refusing to time it")
        }
        print("")
    }
}
