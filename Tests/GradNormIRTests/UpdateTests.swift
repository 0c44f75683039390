import Foundation
import XCTest
import GradNormIR
import TestSupport
@testable import TransformerLite

/// One unsupervised-update step on the real model against PyTorch (fixture written by
/// `scripts/make_adamw_fixture.py`), and the optimizer alone over three steps.
final class UpdateParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Slice: Decodable {
            let tensor: String; let index: [Int]
            let before: [Float]; let after: [Float]; let grad_f64: [Double]
        }
        struct OptimizerOnly: Decodable {
            struct Step: Decodable { let lr: Double; let grads: [[Float]]; let after: [[Float]] }
            let shapes: [[Int]]; let betas: [Double]; let eps: Double; let weight_decay: Double
            let before: [[Float]]; let steps: [Step]
        }
        let documents: [String]
        let ids: [[Int]]
        let temperature: Double; let lr: Double; let betas: [Double]; let eps: Double
        let weight_decay: Double; let max_grad_norm: Double
        let loss: Double; let loss_f64: Double; let grad_norm: Double; let grad_norm_f64: Double
        let delta_norms: [String: Double]
        let slices: [Slice]
        let optimizer_only: OptimizerOnly
    }

    func loadFixture() throws -> Fixture { try loadJSONFixture("update_step_parity", as: Fixture.self) }

    /// The trainer's step on the fixture's batch (4 crops + 4 documents) against PyTorch's
    /// forward → in-batch InfoNCE → backward → clip_grad_norm_ → AdamW step (lr 1e-4):
    ///
    /// - loss and pre-clip gradient norm within 1e-4 relative of PyTorch's float64 values;
    /// - every parameter of the stored slices after the step within 1e-5 relative, where
    ///   relative = |θ_swift − θ_torch| / max(|θ_torch|, 1e-3) (parameters below 1e-3 in
    ///   magnitude are held to 1e-8 absolute, 1e-4 of the step size lr), and the update itself,
    ///   Δθ = θ_after − θ_before, within 2 ulp(θ) + 1e-3·lr of PyTorch's;
    /// - except where the sign of the gradient is decided by rounding: AdamW's first step moves an
    ///   element by ≈ lr·sign(g), so for |g| at float32 noise level the direction is arbitrary in
    ///   any float32 implementation. Those elements (|g_f64| < 1e-3 of the slice's largest, or
    ///   < 1e-7 of the global norm — all of the attention key bias, whose exact gradient is zero)
    ///   are only required to move by at most lr·(1 + λ|θ|);
    /// - per-tensor ‖Δθ‖₂ within 1e-3 relative for every tensor but the key biases.
    ///
    /// lr = 1e-4 makes the update 1e-4…1e-2 of a typical parameter, so the 1e-5 relative check
    /// really checks the update, not just the unchanged weights.
    func testOneUpdateStepMatchesPyTorch() throws {
        let model = try SharedModel.retriever()
        let fx = try loadFixture()
        var c = UpdateConfig()
        c.learningRate = fx.lr
        c.beta1 = fx.betas[0]; c.beta2 = fx.betas[1]; c.epsilon = fx.eps
        c.weightDecay = fx.weight_decay
        c.maxGradNorm = fx.max_grad_norm
        c.temperature = fx.temperature
        c.warmupFraction = 0
        c.steps = 1
        c.batchSize = fx.ids.count / 2
        c.maxLength = 128
        let trainer = try UpdateTrainer(retriever: model, documents: fx.documents, config: c)
        let p = trainer.runStep(sequences: fx.ids)
        func rel(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), 1e-30) }
        XCTAssertEqual(p.learningRate, fx.lr)
        XCTAssertLessThanOrEqual(rel(p.loss, fx.loss_f64), 1e-4, "loss \(p.loss) vs PyTorch f64 \(fx.loss_f64)")
        XCTAssertLessThanOrEqual(rel(p.gradNorm, fx.grad_norm_f64), 1e-4, "grad norm \(p.gradNorm) vs f64 \(fx.grad_norm_f64)")
        XCTAssertGreaterThan(p.gradNorm, fx.max_grad_norm, "the fixture must exercise clipping")

        let layout = model.checkpoint.layout
        let base = model.checkpoint.parameters, after = trainer.parameters
        var worstRel = 0.0, checked = 0, illConditioned = 0
        for s in fx.slices {
            let slot = try XCTUnwrap(layout.slot(named: s.tensor), "no tensor \(s.tensor)")
            let cols = slot.shape.count == 2 ? slot.shape[1] : slot.count
            let start = slot.offset + (s.index.count == 2 ? s.index[0] * cols + s.index[1] : s.index[0])
            let before = base.toArray(start ..< start + s.before.count)
            XCTAssertEqual(before, s.before, "\(s.tensor) \(s.index): parameters before the step differ (indexing?)")
            let mine = after.toArray(start ..< start + s.after.count)
            let gmax = s.grad_f64.map(abs).max() ?? 0
            for k in 0..<s.after.count {
                let g = s.grad_f64[k], theirs = Double(s.after[k]), got = Double(mine[k]), b = Double(before[k])
                let ill = g != 0 && (abs(g) < 1e-3 * gmax || abs(g) < 1e-7 * fx.grad_norm_f64)
                if ill {
                    illConditioned += 1
                    XCTAssertLessThanOrEqual(abs(got - b), fx.lr * (1 + fx.weight_decay * abs(b)) * 1.001 + Double(b.ulp),
                                             "\(s.tensor) \(s.index) +\(k): step larger than lr")
                    continue
                }
                checked += 1
                let r = abs(got - theirs) / max(abs(theirs), 1e-3)
                worstRel = max(worstRel, r)
                XCTAssertLessThanOrEqual(r, 1e-5, "\(s.tensor) \(s.index) +\(k): \(got) vs PyTorch \(theirs)")
                // A zero gradient (unused word-embedding rows, far positions) leaves only the weight
                // decay, θ·(1 − lr·λ): exact up to rounding, so held to 2 ulp (this checks the decay).
                let dMine = got - b, dTheirs = theirs - b
                let dTol = g == 0 ? 2 * Double(Float(theirs).ulp) : 2 * Double(Float(theirs).ulp) + 1e-3 * fx.lr
                XCTAssertLessThanOrEqual(abs(dMine - dTheirs), dTol,
                                         "\(s.tensor) \(s.index) +\(k): update \(dMine) vs PyTorch \(dTheirs)")
            }
        }
        XCTAssertGreaterThan(checked, 250)
        for slot in layout.tensors {
            let theirs = try XCTUnwrap(fx.delta_norms[slot.name], "fixture lacks \(slot.name)")
            var ss = 0.0
            for i in slot.offset ..< slot.offset + slot.count { let d = Double(after[i]) - Double(base[i]); ss += d * d }
            let mine = ss.squareRoot()
            if slot.name.hasSuffix("key.bias") {
                XCTAssertLessThanOrEqual(mine, fx.lr * Double(slot.count).squareRoot() * 1.01, slot.name)
            } else {
                XCTAssertLessThanOrEqual(rel(mine, theirs), 1e-3, "\(slot.name): ‖Δθ‖ \(mine) vs PyTorch \(theirs)")
            }
        }
        print("update step vs PyTorch: loss \(p.loss) (f64 \(fx.loss_f64)), grad norm \(p.gradNorm) (f64 \(fx.grad_norm_f64)); "
              + "\(checked) parameters within \(worstRel) relative, \(illConditioned) sign-ill-conditioned elements bounded")
    }

    /// `AdamW` alone against `torch.optim.AdamW` over three steps with changing learning rates,
    /// weight decay 0.1 and some zero gradients: every parameter after every step within 1e-6
    /// relative (floor 1e-3, as above).
    func testOptimizerAloneMatchesPyTorchOverThreeSteps() throws {
        let o = try loadFixture().optimizer_only
        let params = FlatBuffer(o.before.flatMap { $0 })
        let opt = AdamW(count: params.count, config: AdamWConfig(learningRate: 1, beta1: o.betas[0], beta2: o.betas[1],
                                                                 epsilon: o.eps, weightDecay: o.weight_decay))
        for (k, step) in o.steps.enumerated() {
            opt.step(parameters: params, gradients: FlatBuffer(step.grads.flatMap { $0 }), learningRate: step.lr)
            let expected = step.after.flatMap { $0 }
            XCTAssertEqual(expected.count, params.count, "step \(k + 1): one reference value per parameter")
            for (i, (a, b)) in zip(params.toArray(), expected).enumerated() {
                XCTAssertLessThanOrEqual(abs(Double(a) - Double(b)) / max(abs(Double(b)), 1e-3), 1e-6,
                                         "step \(k + 1), element \(i): \(a) vs PyTorch \(b)")
            }
        }
    }
}

/// The trainer's batch plan, determinism, resume and saved checkpoints, on the real model with
/// short sequences.
final class UpdateTrainerTests: XCTestCase {
    func smallCorpus() throws -> [String] {
        let path = TestPaths.packageRoot.appendingPathComponent("Tests/GradNormIRTests/Fixtures/small-corpus").path
        return try BEIRDataset.loadCorpus(path: path).documents.map(\.fullText)
    }

    func smallConfig() -> UpdateConfig {
        var c = UpdateConfig()
        c.batchSize = 4
        c.maxLength = 40
        c.steps = 4
        c.learningRate = 1e-4
        c.seed = 7
        return c
    }

    /// `smallConfig()` planned by epochs instead of a fixed step count.
    func epochConfig(_ epochs: Int) -> UpdateConfig {
        var c = smallConfig()
        c.steps = nil
        c.epochs = epochs
        return c
    }

    /// The tokenizer's [CLS] and [SEP] ids.
    func specialIds(_ model: Retriever) throws -> (cls: Int, sep: Int) {
        (try XCTUnwrap(model.tokenizer.id(of: "[CLS]")), try XCTUnwrap(model.tokenizer.id(of: "[SEP]")))
    }

    func temporaryFolder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("update-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testBatchPlanCoversEveryDocumentOncePerEpochWithValidCrops() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus()
        var c = epochConfig(2)
        c.positive = .document  // every positive is its whole document (checked below; `.rest`: its own test)
        let trainer = try UpdateTrainer(retriever: model, documents: docs, config: c)
        let n = trainer.contents.count, perEpoch = (n + 3) / 4
        XCTAssertEqual(trainer.totalSteps, 2 * perEpoch)
        XCTAssertEqual(trainer.schedule.warmupSteps, Int((0.1 * Double(trainer.totalSteps)).rounded(.up)))
        for epoch in 0..<2 {
            let seen = (1...perEpoch).flatMap { trainer.batchDocuments(step: epoch * perEpoch + $0) }
            XCTAssertEqual(seen.sorted(), Array(0..<n), "epoch \(epoch) must use every document once")
        }
        XCTAssertNotEqual((1...perEpoch).flatMap { trainer.batchDocuments(step: $0) },
                          (1...perEpoch).flatMap { trainer.batchDocuments(step: perEpoch + $0) }, "reshuffled per epoch")
        let (cls, sep) = try specialIds(model)
        for t in 1...trainer.totalSteps {
            let seqs = trainer.batchSequences(step: t), docsOfStep = trainer.batchDocuments(step: t)
            XCTAssertEqual(seqs.count, 2 * docsOfStep.count)
            XCTAssertEqual(seqs, trainer.batchSequences(step: t), "the plan is a function of the step")
            for (slot, d) in docsOfStep.enumerated() {
                let q = seqs[slot], full = seqs[docsOfStep.count + slot], content = trainer.contents[d]
                XCTAssertEqual(full, [cls] + content + [sep])
                XCTAssertLessThanOrEqual(full.count, c.maxLength)
                XCTAssertEqual(q.first, cls); XCTAssertEqual(q.last, sep)
                let crop = Array(q.dropFirst().dropLast())
                XCTAssertGreaterThanOrEqual(crop.count, max(1, Int(Double(content.count) * c.cropMin)))
                XCTAssertLessThanOrEqual(crop.count, max(1, Int(Double(content.count) * c.cropMax)))
                let found = (0...(content.count - crop.count)).contains { Array(content[$0 ..< $0 + crop.count]) == crop }
                XCTAssertTrue(found, "step \(t): the query must be a contiguous crop of its document")
            }
        }
    }

    /// `.rest` (inverse cloze): the positive is the document with exactly the query's crop cut
    /// out; a crop of the whole document keeps the whole document. Same crops as `.document`.
    /// A replay buffer: every step holds `newPerBatch` new documents (each once per epoch, the
    /// steps planned on the new documents alone) and `replaySlots` distinct replay documents, each
    /// paired with a crop of itself; the plan is a function of the step; a resume with other
    /// replay documents is refused.
    func testReplayDocumentsFillTheirShareOfEveryBatch() throws {
        let model = try SharedModel.retriever()
        let all = try smallCorpus()
        let docs = Array(all.prefix(18)), known = Array(all.suffix(12))
        var c = epochConfig(2)
        c.batchSize = 8
        c.replayShare = 0.25
        c.positive = .document  // so that every slot's positive is its whole document (checked below)
        let trainer = try UpdateTrainer(retriever: model, documents: docs, replay: known, config: c)
        XCTAssertEqual(trainer.replaySlots, 2)
        XCTAssertEqual(trainer.newPerBatch, 6)
        let n = trainer.contents.count, perEpoch = (n + 5) / 6
        XCTAssertEqual(trainer.totalSteps, 2 * perEpoch)
        for epoch in 0..<2 {
            let seen = (1...perEpoch).flatMap { trainer.batchDocuments(step: epoch * perEpoch + $0) }
            XCTAssertEqual(seen.sorted(), Array(0..<n), "epoch \(epoch) must use every new document once")
        }
        let (cls, sep) = try specialIds(model)
        var replayed = Set<Int>()
        for t in 1...trainer.totalSteps {
            let picks = trainer.replayDocuments(step: t)
            XCTAssertEqual(picks.count, 2)
            XCTAssertEqual(Set(picks).count, 2, "step \(t): replay documents must be distinct")
            XCTAssertTrue(picks.allSatisfy { trainer.replayContents.indices.contains($0) })
            replayed.formUnion(picks)
            let newDocs = trainer.batchDocuments(step: t)
            let seqs = trainer.batchSequences(step: t)
            let B = newDocs.count + picks.count
            XCTAssertEqual(seqs.count, 2 * B)
            XCTAssertEqual(seqs, trainer.batchSequences(step: t), "the plan is a function of the step")
            let contents = newDocs.map { trainer.contents[$0] } + picks.map { trainer.replayContents[$0] }
            for (slot, content) in contents.enumerated() {
                XCTAssertEqual(seqs[B + slot], [cls] + content + [sep])
                let crop = Array(seqs[slot].dropFirst().dropLast())
                let found = (0...(content.count - crop.count)).contains { Array(content[$0 ..< $0 + crop.count]) == crop }
                XCTAssertTrue(found, "step \(t), slot \(slot): the query must be a crop of its own document")
            }
        }
        XCTAssertGreaterThan(replayed.count, 2, "replay documents are drawn afresh at each step")

        // No replay documents: the plan is the plain update's.
        let plain = try UpdateTrainer(retriever: model, documents: docs, config: c)
        XCTAssertEqual(plain.replaySlots, 0)
        XCTAssertTrue(plain.replayDocuments(step: 1).isEmpty)
        XCTAssertNotEqual(plain.corpusFingerprint, trainer.corpusFingerprint)

        // Saved with replay documents, resumed with others or none: refused.
        trainer.runStep()
        let dir = try temporaryFolder().path
        try trainer.saveState(folder: dir)
        XCTAssertEqual(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, replay: known, config: c)?.step, 1)
        for other in [[], Array(known.dropLast())] {
            XCTAssertThrowsError(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, replay: other, config: c)) {
                XCTAssertTrue("\($0)".contains("replay documents changed"), "\($0)")
            }
        }
        var none = c
        none.replayShare = 0
        XCTAssertThrowsError(try UpdateTrainer(retriever: model, documents: docs, replay: known, config: none))
        var full = c
        full.replayShare = 0.95
        XCTAssertThrowsError(try full.validate())
    }

    /// `anchor`: after the AdamW step, every parameter moves lr·anchor of the way back to the
    /// starting weights — the plain step's parameters, pulled, to the bit; the starting model is
    /// not written.
    func testAnchorPullsEveryParameterTowardTheStart() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus()
        var c = epochConfig(1)
        let plain = try UpdateTrainer(retriever: model, documents: docs, config: c)
        c.anchor = 3000
        let anchored = try UpdateTrainer(retriever: model, documents: docs, config: c)
        let start = model.checkpoint.parameters.toArray()
        for t in 1...3 {
            let seqs = plain.batchSequences(step: t)
            if t == 1 {  // the warm-up's first rate is 0: nothing to pull yet
                XCTAssertEqual(plain.runStep(sequences: seqs).learningRate, 0)
                anchored.runStep(sequences: seqs)
                continue
            }
            // Each step from the same parameters (so with the same gradients and moments).
            anchored.parameters.withUnsafeMutableBufferPointer { a in
                plain.parameters.withUnsafeBufferPointer { p in _ = a.update(fromContentsOf: p) } }
            let lr = plain.runStep(sequences: seqs).learningRate
            anchored.runStep(sequences: seqs)
            let r = Float(lr * 3000), p = plain.parameters.toArray(), a = anchored.parameters.toArray()
            XCTAssertGreaterThan(r, 0)
            var moved = 0, mismatched = 0
            for i in stride(from: 0, to: p.count, by: 97) {
                if p[i] - r * (p[i] - start[i]) != a[i] { mismatched += 1 }
                if a[i] != p[i] { moved += 1 }
            }
            XCTAssertEqual(mismatched, 0, "step \(t)")
            XCTAssertGreaterThan(moved, 0, "step \(t): the pull changed nothing")
        }
        XCTAssertEqual(model.checkpoint.parameters.toArray(), start, "the starting model is not written")
        c.anchor = 1 / c.learningRate
        XCTAssertThrowsError(try c.validate())
    }

    func testRestPositiveIsTheDocumentWithoutTheCrop() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus() + ["tiny"]
        var c = epochConfig(1)
        c.positive = .rest
        let rest = try UpdateTrainer(retriever: model, documents: docs, config: c)
        c.positive = .document
        let whole = try UpdateTrainer(retriever: model, documents: docs, config: c)
        let (cls, sep) = try specialIds(model)
        var cut = 0, kept = 0
        for t in 1...rest.totalSteps {
            let seqs = rest.batchSequences(step: t), plain = whole.batchSequences(step: t), ds = rest.batchDocuments(step: t)
            let b = ds.count
            XCTAssertEqual(Array(seqs[..<b]), Array(plain[..<b]), "the queries do not depend on the positive")
            for (slot, d) in ds.enumerated() {
                let content = rest.contents[d], crop = Array(seqs[slot].dropFirst().dropLast())
                let positive = seqs[b + slot]
                XCTAssertEqual(positive.first, cls); XCTAssertEqual(positive.last, sep)
                if crop.count == content.count {
                    XCTAssertEqual(positive, [cls] + content + [sep]); kept += 1
                    continue
                }
                let body = Array(positive.dropFirst().dropLast())
                XCTAssertEqual(body.count, content.count - crop.count)
                // Some cut point puts the crop back to give the document.
                let restored = (0...body.count).contains { i in Array(body[..<i]) + crop + Array(body[i...]) == content }
                XCTAssertTrue(restored, "step \(t): positive is not the document minus its crop")
                cut += 1
            }
        }
        XCTAssertGreaterThan(cut, 0)
        XCTAssertGreaterThan(kept, 0, "the one-token document's crop is the whole document")
        // It trains: a step's loss differs from the whole-document positive's.
        XCTAssertNotEqual(rest.runStep().loss, whole.runStep().loss)
    }

    /// Settings saved before a field existed decode with that field's default; every field round-trips.
    func testConfigDecodingFillsSettingsAddedLater() throws {
        var c = UpdateConfig()
        c.steps = 9; c.learningRate = 3e-5; c.batching = .neighbours; c.positive = .rest; c.seed = 4
        c.replayShare = 0.5; c.dropout = 0.1
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(UpdateConfig.self, from: data), c)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["batching"] = nil
        object["positive"] = nil
        object["replayShare"] = nil
        object["dropout"] = nil
        let old = try JSONDecoder().decode(UpdateConfig.self, from: JSONSerialization.data(withJSONObject: object))
        var expected = c
        expected.batching = .random
        expected.positive = .document
        expected.replayShare = UpdateConfig().replayShare
        expected.dropout = 0
        XCTAssertEqual(old, expected)
        XCTAssertThrowsError(try JSONDecoder().decode(UpdateConfig.self, from: Data(#"{"positive": "crop"}"#.utf8)))
    }

    func testNeighbourBatchesPlaceEveryDocumentOnceAndKeepClustersTogether() {
        // Two clusters of four (0–3, 4–7) whose neighbour lists name their own cluster first.
        let neighbours = (0..<8).map { d -> [Int] in
            let mine = d < 4 ? Array(0..<4) : Array(4..<8), other = d < 4 ? Array(4..<8) : Array(0..<4)
            return mine.filter { $0 != d } + other
        }
        let batches = UpdateTrainer.neighbourBatches(order: [5, 2, 7, 0, 1, 3, 4, 6], neighbours: neighbours, batchSize: 4)
        XCTAssertEqual(batches, [[5, 4, 6, 7], [2, 0, 1, 3]])
        // Short neighbour lists: unplaced documents fill up in `order`; sizes b except the last formed.
        let order = Array((0..<11).reversed())
        let sparse = UpdateTrainer.neighbourBatches(order: order, neighbours: (0..<11).map { [($0 + 1) % 11] }, batchSize: 4)
        XCTAssertEqual(sparse.flatMap { $0 }.sorted(), Array(0..<11))
        XCTAssertEqual(sparse.map(\.count), [4, 4, 3])
        XCTAssertEqual(sparse[0], [10, 0, 9, 8], "10's neighbour 0, then the next unplaced in order")
    }

    /// `.neighbours` on the real model: every document once per epoch, a plan that is a function
    /// of the step (so a resumed run replays it), and batches whose documents are more similar to
    /// each other (by the starting model) than `.random`'s.
    func testNeighbourBatchingGroupsSimilarDocumentsAndIsResumable() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus()
        var c = epochConfig(2)
        c.batching = .neighbours
        let trainer = try UpdateTrainer(retriever: model, documents: docs, config: c)
        var r = c
        r.batching = .random
        let random = try UpdateTrainer(retriever: model, documents: docs, config: r)
        let n = trainer.contents.count, perEpoch = (n + 3) / 4
        XCTAssertEqual(trainer.totalSteps, random.totalSteps)
        let (cls, sep) = try specialIds(model)
        let emb = model.searchEmbeddings(ids: trainer.contents.map { [cls] + $0 + [sep] })
        func meanPairCosine(_ t: UpdateTrainer, epoch: Int) -> Double {
            var sum = 0.0, pairs = 0
            for s in 1...perEpoch {
                let b = t.batchDocuments(step: epoch * perEpoch + s)
                for i in b.indices { for j in b.indices where j > i {
                    sum += zip(emb[b[i]], emb[b[j]]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    pairs += 1
                } }
            }
            return sum / Double(pairs)
        }
        for epoch in 0..<2 {
            let seen = (1...perEpoch).flatMap { trainer.batchDocuments(step: epoch * perEpoch + $0) }
            XCTAssertEqual(seen.sorted(), Array(0..<n), "epoch \(epoch) must use every document once")
            let near = meanPairCosine(trainer, epoch: epoch), far = meanPairCosine(random, epoch: epoch)
            XCTAssertGreaterThan(near, far + 0.05, "epoch \(epoch): neighbour batches \(near) vs random \(far)")
        }
        let again = try UpdateTrainer(retriever: model, documents: docs, config: c)
        for t in stride(from: trainer.totalSteps, through: 1, by: -1) {  // backwards: no reliance on the epoch cache
            XCTAssertEqual(again.batchDocuments(step: t), trainer.batchDocuments(step: t))
        }
        // Saved after step 3 and resumed: the same losses as an uninterrupted run.
        while !trainer.isFinished { trainer.runStep() }
        let b = try UpdateTrainer(retriever: model, documents: docs, config: c)
        for _ in 0..<3 { b.runStep() }
        let dir = try temporaryFolder().path
        try b.saveState(folder: dir)
        XCTAssertThrowsError(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, config: r)) {
            XCTAssertTrue("\($0)".contains("other settings"), "\($0)")
        }
        let resumed = try XCTUnwrap(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, config: c))
        while !resumed.isFinished { resumed.runStep() }
        XCTAssertEqual(resumed.losses, trainer.losses)
        XCTAssertTrue(resumed.parameters.toArray() == trainer.parameters.toArray())
    }

    /// Same settings ⇒ bit-identical parameters; a run saved after step 2 and resumed equals an
    /// uninterrupted run bit for bit; the base retriever is never changed.
    func testDeterministicAndResumable() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus()
        // Without and with training-mode dropout (fresh masks every step, seeded by the step); the
        // masks change the losses.
        var dropped = smallConfig()
        dropped.dropout = 0.1
        let plain = try checkDeterministicAndResumable(model: model, docs: docs, config: smallConfig())
        let noisy = try checkDeterministicAndResumable(model: model, docs: docs, config: dropped)
        XCTAssertNotEqual(plain, noisy, "dropout changed no loss")
    }

    /// Runs `c` uninterrupted and stopped after two steps then resumed, checks they end equal, and
    /// returns the losses.
    @discardableResult
    func checkDeterministicAndResumable(model: Retriever, docs: [String], config c: UpdateConfig) throws -> [Double] {
        let baseBefore = model.checkpoint.parameters.toArray(0 ..< 4096)
        let a = try UpdateTrainer(retriever: model, documents: docs, config: c)
        while !a.isFinished { a.runStep() }
        let b = try UpdateTrainer(retriever: model, documents: docs, config: c)
        b.runStep(); b.runStep()
        let dir = try temporaryFolder().path
        try b.saveState(folder: dir)
        let resumed = try XCTUnwrap(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, config: c))
        XCTAssertEqual(resumed.step, 2)
        while !resumed.isFinished { resumed.runStep() }
        XCTAssertEqual(resumed.losses, a.losses)
        XCTAssertTrue(resumed.parameters.toArray() == a.parameters.toArray(), "resumed parameters differ from an uninterrupted run")
        XCTAssertTrue(resumed.optimizer.v.toArray() == a.optimizer.v.toArray())
        XCTAssertEqual(model.checkpoint.parameters.toArray(0 ..< 4096), baseBefore, "the base retriever must be untouched")
        XCTAssertFalse(a.parameters.toArray(0 ..< 4096) == baseBefore, "the update must change the parameters")

        // Other settings, other documents: refused with a clear error.
        var other = c
        other.learningRate = 2e-4
        XCTAssertThrowsError(try UpdateTrainer.resume(folder: dir, retriever: model, documents: docs, config: other)) {
            XCTAssertTrue("\($0)".contains("other settings"), "\($0)")
        }
        XCTAssertThrowsError(try UpdateTrainer.resume(folder: dir, retriever: model, documents: Array(docs.dropLast()), config: c)) {
            XCTAssertTrue("\($0)".contains("other documents"), "\($0)")
        }
        XCTAssertNil(try UpdateTrainer.resume(folder: dir + "/none", retriever: model, documents: docs, config: c))
        return a.losses
    }

    func testRunReturnsUpdatedRetrieverAndSummary() throws {
        let model = try SharedModel.retriever()
        let docs = try smallCorpus()
        var c = smallConfig()
        c.steps = 3
        var seen: [Int] = []
        let (updated, summary) = try UnsupervisedUpdate.run(retriever: model, documents: docs, config: c) { seen.append($0.step) }
        XCTAssertEqual(seen, [1, 2, 3])
        XCTAssertEqual(summary.steps, 3)
        XCTAssertEqual(summary.losses.count, 3)
        XCTAssertGreaterThan(summary.tokens, 0)
        XCTAssertEqual(summary.usedDocuments, docs.count)
        let text = "a random contiguous crop of a document"
        XCTAssertNotEqual(try updated.embed([text]), try model.embed([text]))
        XCTAssertThrowsError(try UnsupervisedUpdate.run(retriever: model, documents: [docs[0]], config: c))
        var bad = c
        bad.batchSize = 1
        XCTAssertThrowsError(try bad.validate())
        bad = c; bad.cropMin = 0.6
        XCTAssertThrowsError(try bad.validate())
        bad = c; bad.learningRate = .nan
        XCTAssertThrowsError(try bad.validate())
    }

    /// save → load gives the same parameters bit for bit (every tensor back in its slot, query/key/
    /// value unstacked under the source's names), the same settings and the same embeddings.
    func testSavedCheckpointRoundTripsBitExactly() throws {
        let model = try SharedModel.retriever()
        let base = model.checkpoint
        // Distinct new parameters: the real weights, perturbed element by element.
        let p = FlatBuffer(count: base.layout.count)
        base.parameters.withUnsafeBufferPointer { src in
            p.withUnsafeMutableBufferPointer { dst in
                for i in 0..<dst.count { dst[i] = src[i] + Float(i % 13) * 1e-4 }
            }
        }
        let updated = base.replacingParameters(p)
        let dir = try temporaryFolder().appendingPathComponent("model").path
        try updated.save(to: dir)
        let loaded = try Checkpoint.load(folder: dir)
        XCTAssertTrue(loaded.parameters.toArray() == p.toArray(), "parameters differ after save → load")
        XCTAssertEqual(loaded.config, base.config)
        XCTAssertEqual(loaded.maxSeqLength, base.maxSeqLength)
        XCTAssertEqual(loaded.lowercase, base.lowercase)
        XCTAssertEqual(loaded.stripAccents, base.stripAccents)
        let file = try SafeTensorsFile(path: dir + "/model.safetensors")
        let source = try SafeTensorsFile(path: base.folder + "/model.safetensors")
        XCTAssertEqual(Set(file.tensorNames), Set(source.tensorNames).subtracting(["embeddings.position_ids"]))
        XCTAssertEqual(try file.floats("pooler.dense.bias"), try source.floats("pooler.dense.bias"))
        for name in ["vocab.txt", "config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"] {
            XCTAssertEqual(FileManager.default.contents(atPath: dir + "/" + name), FileManager.default.contents(atPath: base.folder + "/" + name), name)
        }
        let reloaded = try Retriever.load(folder: dir)
        let viaMemory = try Retriever(checkpoint: updated, tokenizer: model.tokenizer)
        XCTAssertEqual(try reloaded.embed(["hello world"]), try viaMemory.embed(["hello world"]))
        // Saving again over the folder works (atomic replace); a file or the source folder is refused.
        try updated.save(to: dir)
        XCTAssertThrowsError(try updated.save(to: dir + "/config.json"))
        XCTAssertThrowsError(try updated.save(to: base.folder))
        XCTAssertThrowsError(try updated.withPooling(.cls).save(to: dir + "-cls")) { e in
            XCTAssertTrue("\(e)".contains("pooling was overridden"), "\(e)")
        }
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.contains(".tmp-") })
    }
}
