import XCTest
import TestSupport
@testable import TransformerLite

/// The whole encoder on a tiny random configuration: Float32 forward against the Float64
/// reference, and the backward pass against finite differences of the reference loss.
final class EncoderTests: XCTestCase {
    static func tinyConfig(pooling: EncoderConfig.Pooling = .mean, normalize: Bool = true) -> EncoderConfig {
        EncoderConfig(vocabSize: 23, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 24,
                      maxPositions: 12, typeVocabSize: 2, layerNormEps: 1e-12, pooling: pooling, normalize: normalize)
    }

    /// Random parameters: LayerNorm gains near 1, everything else uniform in ±0.4.
    static func randomParameters(_ layout: ParameterLayout, seed: UInt64) -> [Double] {
        var rng = TestRNG(seed: seed)
        var p = rng.array(layout.count, scale: 0.4)
        for slot in layout.tensors where slot.name.hasSuffix("LayerNorm.weight") {
            for i in slot.offset..<(slot.offset + slot.count) { p[i] = 1 + p[i] * 0.5 }
        }
        return p
    }

    let sequences = [[1, 5, 7, 2, 9], [4], [3, 3, 8, 15, 22, 0, 11, 2, 6], [1, 2, 3]]

    func testForwardMatchesFloat64Reference() {
        for (pooling, normalize) in [(EncoderConfig.Pooling.mean, true), (.cls, false)] {
            let layout = ParameterLayout(config: Self.tinyConfig(pooling: pooling, normalize: normalize))
            let p = Self.randomParameters(layout, seed: 11)
            let enc = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
            let out = enc.embed(sequences)
            var worst = 0.0
            for (s, seq) in sequences.enumerated() {
                let ref = Ref.encode(seq, params: p, layout: layout)
                worst = max(worst, zip(out[s], ref).map { abs(Double($0) - $1) }.max()!)
            }
            XCTAssertLessThan(worst, 1e-5, "pooling \(pooling) normalize \(normalize)")
        }
    }

    func testPackingSavingAndRepeatsGiveIdenticalOutputs() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let enc = Encoder(layout: layout, parameters: FlatBuffer(Self.randomParameters(layout, seed: 12).floats))
        let together = enc.embed(sequences)
        let again = enc.embed(sequences)
        XCTAssertEqual(together, again, "same inputs must give bit-identical outputs")
        for (s, seq) in sequences.enumerated() {
            let alone = enc.embed([seq])[0]
            let diff = zip(alone, together[s]).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(diff, 1e-6, "sequence \(s) packed with others differs from alone")
        }
        enc.forward(PackedBatch(sequences), saveForBackward: true)
        XCTAssertEqual(enc.outputRows(), together)
    }

    func testBackwardMatchesFiniteDifferences() {
        for (pooling, normalize) in [(EncoderConfig.Pooling.mean, true), (.cls, false)] {
            let layout = ParameterLayout(config: Self.tinyConfig(pooling: pooling, normalize: normalize))
            let p = Self.randomParameters(layout, seed: 13)
            var rng = TestRNG(seed: 14)
            let C = layout.config.hiddenSize
            let r = rng.array(sequences.count * C)
            // L = Σ_s r_s · emb_s
            func loss(_ q: [Double]) -> Double {
                var s = 0.0
                for (i, seq) in sequences.enumerated() {
                    let e = Ref.encode(seq, params: q, layout: layout)
                    for j in 0..<C { s += r[i * C + j] * e[j] }
                }
                return s
            }
            let enc = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
            enc.forward(PackedBatch(sequences), saveForBackward: true)
            let grads = FlatBuffer(count: layout.count)
            let dOut = r.floats
            enc.backward(dOutput: dOut, into: grads, freezePositions: false)

            // Check 12 entries of every tensor (all of a small one), including used embedding rows.
            var indices: [Int] = []
            for slot in layout.tensors {
                for _ in 0..<min(12, slot.count) { indices.append(slot.offset + rng.int(slot.count)) }
            }
            let usedRow = layout.embeddings.word + 5 * C
            indices += Array(usedRow..<(usedRow + C))
            let fd = Ref.finiteDifference(loss, at: p, indices: indices)
            let analytic = indices.map { Double(grads[$0]) }
            let err = Ref.normalizedError(analytic, fd)
            XCTAssertLessThan(err, 1e-4, "pooling \(pooling) normalize \(normalize): normalised error \(err)")
            // Per tensor too, so one wrong small tensor cannot hide behind large ones.
            for slot in layout.tensors {
                let sel = indices.enumerated().filter { $0.element >= slot.offset && $0.element < slot.offset + slot.count }
                let a = sel.map { analytic[$0.offset] }, f = sel.map { fd[$0.offset] }
                if f.map(abs).max()! > 1e-8 {
                    XCTAssertLessThan(Ref.normalizedError(a, f), 1e-3, slot.name)
                }
            }

            // Accumulation: a second backward doubles the gradient; frozen positions get none.
            let first = grads.toArray()
            enc.backward(dOutput: dOut, into: grads, freezePositions: true)
            let pos = layout.embeddings.position
            let posCount = layout.config.maxPositions * C
            for i in stride(from: 0, to: layout.count, by: 7) {
                let expected = (i >= pos && i < pos + posCount) ? first[i] : 2 * first[i]
                XCTAssertEqual(grads[i], expected, accuracy: 1e-6 * max(1, abs(expected)))
            }
        }
    }

    /// The whole record gradient: encoder + InfoNCE over (query, positive, negatives), against
    /// finite differences of the Float64 reference loss, for every tensor but the frozen positions.
    func testEncoderPlusInfoNCEMatchesFiniteDifferences() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let p = Self.randomParameters(layout, seed: 15)
        let record = [[1, 5, 7, 2], [4, 9], [3, 3, 8, 15, 22, 0, 11], [1, 2, 3], [6], [2, 2, 19, 7, 7]]
        let tau = 0.05, C = layout.config.hiddenSize
        func loss(_ q: [Double]) -> Double {
            let e = record.map { Ref.encode($0, params: q, layout: layout) }
            let z = (1..<e.count).map { j in zip(e[0], e[j]).map(*).reduce(0, +) / tau }  // unit vectors: cos = dot
            let mx = z.max()!
            return mx + log(z.map { exp($0 - mx) }.reduce(0, +)) - z[0]
        }
        let enc = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
        enc.forward(PackedBatch(record), saveForBackward: true)
        var dE = [Float](repeating: 0, count: record.count * C)
        let l = enc.withOutput { InfoNCE.forwardBackward(embeddings: $0.baseAddress!, rows: record.count, dim: C,
                                                         temperature: tau, dEmbeddings: &dE) }
        XCTAssertEqual(l, loss(p), accuracy: 1e-4 * abs(loss(p)))
        let grads = FlatBuffer(count: layout.count)
        enc.backward(dOutput: dE, into: grads, freezePositions: true)
        var rng = TestRNG(seed: 16)
        var indices: [Int] = []
        for slot in layout.tensors where !slot.name.contains("position") {
            for _ in 0..<min(10, slot.count) { indices.append(slot.offset + rng.int(slot.count)) }
        }
        let fd = Ref.finiteDifference(loss, at: p, indices: indices)
        let err = Ref.normalizedError(indices.map { Double(grads[$0]) }, fd)
        XCTAssertLessThan(err, 1e-4, "normalised error \(err)")
        let pos = layout.embeddings.position
        XCTAssertTrue((pos..<(pos + layout.config.maxPositions * C)).allSatisfy { grads[$0] == 0 }, "frozen positions got gradient")
    }

    /// Reusing the first sequence's saved forward (GradNormIR's document query, shared by its
    /// records) gives the same outputs and gradients as a full forward.
    func testReusedPrefixMatchesFullForward() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let p = Self.randomParameters(layout, seed: 17).floats
        let q = [1, 5, 7, 2, 9]
        let recordA = [q, [4, 4, 8], [3, 3, 8, 15, 22, 0, 11, 2, 6]]
        let recordB = [q, [6, 1], [2, 9, 9, 9], [7]]
        let C = layout.config.hiddenSize
        var rng = TestRNG(seed: 18)
        let dOut = rng.array(recordB.count * C).floats

        let reusing = Encoder(layout: layout, parameters: FlatBuffer(p))
        reusing.forward(PackedBatch([[Int]](repeating: Array(repeating: 1, count: 11), count: 4)), saveForBackward: true)  // capacity
        XCTAssertEqual(reusing.forward(PackedBatch(recordA), saveForBackward: true, reusingFirst: 1), 0, "different prefix: no reuse")
        reusing.backward(dOutput: rng.array(recordA.count * C).floats, into: FlatBuffer(count: layout.count), freezePositions: true)
        XCTAssertEqual(reusing.forward(PackedBatch(recordB), saveForBackward: true, reusingFirst: 1), 1, "same query: reused")
        let gReuse = FlatBuffer(count: layout.count)
        reusing.backward(dOutput: dOut, into: gReuse, freezePositions: true)

        let full = Encoder(layout: layout, parameters: FlatBuffer(p))
        full.forward(PackedBatch(recordB), saveForBackward: true)
        let gFull = FlatBuffer(count: layout.count)
        full.backward(dOutput: dOut, into: gFull, freezePositions: true)

        let a = reusing.outputRows(), b = full.outputRows()
        for s in 0..<recordB.count {
            XCTAssertLessThan(zip(a[s], b[s]).map { abs($0 - $1) }.max()!, 1e-6, "output \(s)")
        }
        XCTAssertLessThan(Ref.normalizedError(gReuse.toArray().doubles, gFull.toArray().doubles), 1e-6)
        // A forward that reallocates the workspace cannot reuse.
        let grown = [q] + [[Int]](repeating: Array(repeating: 3, count: 12), count: 5)
        XCTAssertEqual(reusing.forward(PackedBatch(grown), saveForBackward: true, reusingFirst: 1), 0)
    }

    /// Recomputing the feed-forward pre-activation in the backward (`.recomputeFeedForward`) gives
    /// the same bits as saving it — outputs and gradients, across a reused query — and saves
    /// (L − 1)·n·I floats of workspace.
    func testRecomputedFeedForwardIsBitIdenticalToSaved() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let c = layout.config
        let p = Self.randomParameters(layout, seed: 19).floats
        let q = (0..<10).map { ($0 * 7 + 3) % 23 }
        // Enough rows (72, 63) that the products are split among workers.
        let first = [q] + (0..<7).map { s in (0..<(8 + s % 3)).map { ($0 * 5 + s) % 23 } }
        let second = [q] + (0..<6).map { s in (0..<(10 - s % 4)).map { ($0 * 3 + s + 1) % 23 } }
        var rng = TestRNG(seed: 20)
        let dFirst = rng.array(first.count * c.hiddenSize).floats
        let dSecond = rng.array(second.count * c.hiddenSize).floats
        func run(_ memory: ActivationMemory) -> (outputs: [[Float]], grads: [Float], reused: Int) {
            let enc = Encoder(layout: layout, parameters: FlatBuffer(p), memory: memory)
            enc.forward(PackedBatch([q]), saveForBackward: true)  // the query alone, as scoring encodes it
            let grads = FlatBuffer(count: layout.count)
            enc.forward(PackedBatch(first), saveForBackward: true, reusingFirst: 1)  // grows: recomputes q
            enc.backward(dOutput: dFirst, into: grads, freezePositions: true)
            let reused = enc.forward(PackedBatch(second), saveForBackward: true, reusingFirst: 1)
            enc.backward(dOutput: dSecond, into: grads, freezePositions: true)
            return (enc.outputRows(), grads.toArray(), reused)
        }
        let saved = run(.saveAll), recomputed = run(.recomputeFeedForward)
        XCTAssertEqual([saved.reused, recomputed.reused], [1, 1])
        XCTAssertTrue(recomputed.outputs == saved.outputs, "outputs differ")
        XCTAssertTrue(saved.grads.contains { $0 != 0 })
        let differing = zip(recomputed.grads, saved.grads).filter { $0 != $1 }.count
        XCTAssertEqual(differing, 0, "gradient entries that differ")

        let n = PackedBatch(first).tokenCount
        let full = ActivationLayout(config: c, tokens: n, sequences: first.count, maxLength: 12, saveAll: true,
                                    recomputeFeedForward: false)
        let lean = ActivationLayout(config: c, tokens: n, sequences: first.count, maxLength: 12, saveAll: true,
                                    recomputeFeedForward: true)
        XCTAssertEqual(full.count - lean.count, (c.numLayers - 1) * ((n * c.intermediateSize + 15) / 16 * 16))
    }

    /// Hidden dropout's masks rebuilt from `HiddenDropout`'s documented rule — site s draws its
    /// (tokens × hidden) mask row by row from SplitMix64(seed ⊕ s·φ), an element kept when its
    /// draw is ≥ p — as per-sequence multipliers for the Float64 reference.
    static func dropoutMultipliers(_ d: HiddenDropout, sequences: [[Int]], layout: ParameterLayout) -> [[[Double]]] {
        let C = layout.config.hiddenSize, n = sequences.map(\.count).reduce(0, +)
        let scale = 1 / (1 - Double(d.p))
        let sites = (0..<(1 + 2 * layout.config.numLayers)).map { site -> [Double] in
            var rng = SplitMix64(seed: d.seed ^ (UInt64(site) &* 0x9E37_79B9_7F4A_7C15))
            return (0..<(n * C)).map { _ in rng.nextUnitFloat() < d.p ? 0 : scale }
        }
        var start = 0
        return sequences.map { seq in
            defer { start += seq.count }
            return sites.map { Array($0[(start * C)..<((start + seq.count) * C)]) }
        }
    }

    /// Training-mode hidden dropout: the forward equals the Float64 reference with the same masks,
    /// the backward equals finite differences of that reference (masks fixed), p = 0 changes no
    /// bit, and the seed decides the masks.
    func testHiddenDropoutMatchesReferenceAndFiniteDifferences() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let p = Self.randomParameters(layout, seed: 23)
        let C = layout.config.hiddenSize
        var rng = TestRNG(seed: 24)
        let r = rng.array(sequences.count * C)
        let d = HiddenDropout(p: 0.3, seed: 99)
        let masks = Self.dropoutMultipliers(d, sequences: sequences, layout: layout)
        func loss(_ q: [Double]) -> Double {
            var s = 0.0
            for (i, seq) in sequences.enumerated() {
                let e = Ref.encode(seq, params: q, layout: layout, dropout: masks[i])
                for j in 0..<C { s += r[i * C + j] * e[j] }
            }
            return s
        }
        let enc = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
        let plain = enc.embed(sequences)
        enc.forward(PackedBatch(sequences), saveForBackward: true, dropout: d)
        let out = enc.outputRows()
        var worst = 0.0
        for (i, seq) in sequences.enumerated() {
            let ref = Ref.encode(seq, params: p, layout: layout, dropout: masks[i])
            worst = max(worst, zip(out[i], ref).map { abs(Double($0) - $1) }.max()!)
        }
        XCTAssertLessThan(worst, 1e-5, "forward with dropout vs reference")
        XCTAssertGreaterThan(zip(out.joined(), plain.joined()).map { abs($0 - $1) }.max()!, 1e-2, "dropout changed nothing")

        let grads = FlatBuffer(count: layout.count)
        enc.backward(dOutput: r.floats, into: grads, freezePositions: false)
        var indices: [Int] = []
        for slot in layout.tensors {
            for _ in 0..<min(12, slot.count) { indices.append(slot.offset + rng.int(slot.count)) }
        }
        let fd = Ref.finiteDifference(loss, at: p, indices: indices)
        let analytic = indices.map { Double(grads[$0]) }
        XCTAssertLessThan(Ref.normalizedError(analytic, fd), 1e-4)
        for slot in layout.tensors {
            let sel = indices.enumerated().filter { $0.element >= slot.offset && $0.element < slot.offset + slot.count }
            let a = sel.map { analytic[$0.offset] }, f = sel.map { fd[$0.offset] }
            if f.map(abs).max()! > 1e-8 {
                XCTAssertLessThan(Ref.normalizedError(a, f), 1e-3, slot.name)
            }
        }

        // p = 0: the same bits as no dropout, forward and backward.
        let dOut = r.floats
        func run(_ dropout: HiddenDropout?) -> ([[Float]], [Float]) {
            let e = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
            e.forward(PackedBatch(sequences), saveForBackward: true, dropout: dropout)
            let g = FlatBuffer(count: layout.count)
            e.backward(dOutput: dOut, into: g, freezePositions: false)
            return (e.outputRows(), g.toArray())
        }
        let none = run(nil), zero = run(HiddenDropout(p: 0, seed: 5))
        XCTAssertTrue(none.0 == zero.0 && none.1 == zero.1, "p = 0 changed the result")
        // The seed decides the masks: the same seed repeats, another differs.
        XCTAssertTrue(run(d).0 == out)
        XCTAssertFalse(run(HiddenDropout(p: 0.3, seed: 100)).0 == out)
        // A prefix computed with dropout is not reused by a forward without it.
        let again = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
        again.forward(PackedBatch(sequences), saveForBackward: true)  // capacity: the next forwards keep the workspace
        again.forward(PackedBatch([sequences[0]]), saveForBackward: true, dropout: d)
        XCTAssertEqual(again.forward(PackedBatch(sequences), saveForBackward: true, reusingFirst: 1), 0)
        let fresh = Encoder(layout: layout, parameters: FlatBuffer(p.floats))
        fresh.forward(PackedBatch(sequences), saveForBackward: true, reusingFirst: 1)  // nothing to reuse
        XCTAssertEqual(again.outputRows(), fresh.outputRows())
    }

    /// A query computed inside a larger pass is not reused: its rows were rounded as part of that
    /// pass, so reuse would not give what computing it on its own gives.
    func testPrefixInsideALargerPassIsNotReused() {
        let layout = ParameterLayout(config: Self.tinyConfig())
        let enc = Encoder(layout: layout, parameters: FlatBuffer(Self.randomParameters(layout, seed: 21).floats))
        let q = [1, 5, 7, 2, 9]
        enc.forward(PackedBatch([q, [4, 4, 8], [6, 1, 2]]), saveForBackward: true)  // one pass over all rows
        XCTAssertEqual(enc.forward(PackedBatch([q, [3, 3]]), saveForBackward: true, reusingFirst: 1), 0)
        XCTAssertEqual(enc.forward(PackedBatch([q, [7]]), saveForBackward: true, reusingFirst: 1), 1, "now it was")
    }
}
