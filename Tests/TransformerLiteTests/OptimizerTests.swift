import XCTest
import TestSupport
@testable import TransformerLite

/// AdamW, the learning-rate schedule, clipping and the in-batch InfoNCE loss against their
/// Float64 references (Tests/TestSupport/ReferenceOptimizer.swift).
final class OptimizerTests: XCTestCase {
    /// Several AdamW steps with random parameters and gradients (some exactly zero, as unused
    /// word-embedding rows are) and weight decay, a changing learning rate, against the Float64
    /// step. Float32 arithmetic: every parameter within 2e-6 relative of the reference after 5
    /// steps (the update itself is ~lr = 1e-2, so this checks it to ~1e-4 of its size).
    func testAdamWMatchesFloat64ReferenceOverSeveralSteps() {
        var rng = TestRNG(seed: 101)
        let n = 1_000
        let config = AdamWConfig(learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        let p0 = rng.array(n, scale: 0.5).floats.doubles
        var ref = RefOptim.AdamWState(params: p0)
        let params = FlatBuffer(p0.floats)
        let opt = AdamW(count: n, config: config)
        let rates = [1e-2, 5e-3, 1e-2, 2e-3, 0.0]
        var gmax = [Double](repeating: 0, count: n)  // largest |g_i| seen: the scale of m_i
        for (k, lr) in rates.enumerated() {
            // Gradients of very different magnitudes; elements 0..<50 always zero, 50..<100 zero on
            // odd steps only.
            var g = (0..<n).map { i in rng.uniform() * pow(10, Double(i % 7) - 4) }
            for i in 0..<50 { g[i] = 0 }
            if k % 2 == 1 { for i in 50..<100 { g[i] = 0 } }
            let gf = g.floats
            for i in 0..<n { gmax[i] = max(gmax[i], abs(g[i])) }
            opt.step(parameters: params, gradients: FlatBuffer(gf), learningRate: lr)
            RefOptim.adamWStep(&ref, grads: gf.doubles, lr: lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1)
        }
        XCTAssertEqual(opt.stepCount, rates.count)
        var worst = 0.0, worstMoment = 0.0
        for i in 0..<n {
            worst = max(worst, abs(Double(params[i]) - ref.params[i]) / max(abs(ref.params[i]), 1e-3))
            // m can cancel to near zero: compare it with the scale of its gradients.
            worstMoment = max(worstMoment, abs(Double(opt.m[i]) - ref.m[i]) / max(gmax[i], 1e-30))
            worstMoment = max(worstMoment, abs(Double(opt.v[i]) - ref.v[i]) / max(abs(ref.v[i]), 1e-20))
        }
        XCTAssertLessThan(worst, 2e-6, "parameters vs Float64 AdamW")
        XCTAssertLessThan(worstMoment, 1e-5, "moments vs Float64 AdamW")
        // Always-zero gradients: the moments stay zero and only the decay acts, θ·Π(1 − lr·λ).
        let decay = rates.reduce(1.0) { $0 * (1 - $1 * 0.1) }
        for i in 0..<50 {
            XCTAssertEqual(opt.m[i], 0); XCTAssertEqual(opt.v[i], 0)
            XCTAssertEqual(Double(params[i]), p0[i] * decay, accuracy: 1e-6 * abs(p0[i]))
        }
    }

    /// Resuming from saved moments and step count continues exactly as an uninterrupted run.
    func testAdamWResumeIsBitIdentical() {
        var rng = TestRNG(seed: 102)
        let n = 257
        let p0 = rng.array(n).floats
        let grads = (0..<4).map { _ in FlatBuffer(rng.array(n, scale: 0.1).floats) }
        let config = AdamWConfig(learningRate: 1e-3, weightDecay: 0.01)
        let a = FlatBuffer(p0), optA = AdamW(count: n, config: config)
        for g in grads { optA.step(parameters: a, gradients: g) }
        let b = FlatBuffer(p0), optB = AdamW(count: n, config: config)
        for g in grads.prefix(2) { optB.step(parameters: b, gradients: g) }
        let resumed = AdamW(config: config, m: FlatBuffer(optB.m.toArray()), v: FlatBuffer(optB.v.toArray()),
                            stepCount: optB.stepCount)
        for g in grads.suffix(2) { resumed.step(parameters: b, gradients: g) }
        XCTAssertEqual(a.toArray(), b.toArray())
        XCTAssertEqual(optA.m.toArray(), resumed.m.toArray())
        XCTAssertEqual(optA.v.toArray(), resumed.v.toArray())
    }

    func testLinearWarmupScheduleValues() {
        let s = LearningRateSchedule(peak: 1e-4, warmupSteps: 10, totalSteps: 100)
        XCTAssertEqual(s.rate(step: 1), 0)                       // PyTorch's first step uses λ(0) = 0
        XCTAssertEqual(s.rate(step: 2), 1e-5, accuracy: 1e-18)
        XCTAssertEqual(s.rate(step: 11), 1e-4, accuracy: 1e-18)  // end of warm-up: the peak
        XCTAssertEqual(s.rate(step: 56), 5e-5, accuracy: 1e-18)  // (100 − 55)/90
        XCTAssertEqual(s.rate(step: 100), 1e-4 / 90, accuracy: 1e-18)
        XCTAssertEqual(s.rate(step: 101), 0)
        XCTAssertEqual(s.rate(step: 150), 0)
        for t in 1...120 {
            XCTAssertEqual(s.rate(step: t), RefOptim.linearWarmupRate(step: t, peak: 1e-4, warmup: 10, total: 100),
                           accuracy: 1e-18, "step \(t)")
        }
        // No warm-up: the first step already uses the peak.
        let flat = LearningRateSchedule(peak: 2e-5, warmupSteps: 0, totalSteps: 4)
        for (t, expected) in zip(1...5, [2e-5, 1.5e-5, 1e-5, 5e-6, 0]) {
            XCTAssertEqual(flat.rate(step: t), expected, accuracy: 1e-18, "no warm-up, step \(t)")
        }
    }

    func testClipGlobalNorm() {
        var rng = TestRNG(seed: 103)
        let g = rng.array(500, scale: 0.3)
        let (refNorm, refClipped) = RefOptim.clip(g, maxNorm: 1.0)
        XCTAssertGreaterThan(refNorm, 1)
        let buf = FlatBuffer(g.floats)
        let n = GradientClipping.clipGlobalNorm(buf, maxNorm: 1.0)
        XCTAssertEqual(n, refNorm, accuracy: 1e-6 * refNorm)
        XCTAssertLessThan(Ref.normalizedError(buf.toArray().doubles, refClipped), 1e-6)
        XCTAssertEqual(buf.l2Norm(), 1.0, accuracy: 1e-5)
        // Below the limit nothing changes (bit for bit).
        let small = FlatBuffer(g.map { $0 * 1e-3 }.floats)
        let before = small.toArray()
        GradientClipping.clipGlobalNorm(small, maxNorm: 1.0)
        XCTAssertEqual(small.toArray(), before)
    }

    /// Loss and gradient of the in-batch loss against central finite differences of the Float64
    /// reference, for B = 1, 2 and 5 pairs.
    func testInBatchInfoNCEMatchesFiniteDifferences() {
        for (B, seed) in [(1, 104), (2, 105), (5, 106)] as [(Int, UInt64)] {
            var rng = TestRNG(seed: seed)
            let C = 6, tau = 0.05
            let e = rng.array(2 * B * C).floats.doubles  // Float32-exact inputs
            var dE = [Float](repeating: .nan, count: 2 * B * C)
            let loss = e.floats.withUnsafeBufferPointer {
                InfoNCE.inBatch(embeddings: $0.baseAddress!, pairs: B, dim: C, temperature: tau, dEmbeddings: &dE)
            }
            let ref = RefOptim.inBatchInfoNCE(e, pairs: B, dim: C, tau: tau)
            XCTAssertEqual(loss, ref, accuracy: 1e-10 * max(1, abs(ref)), "B = \(B)")
            let fd = Ref.finiteDifference({ RefOptim.inBatchInfoNCE($0, pairs: B, dim: C, tau: tau) }, at: e,
                                          indices: Array(e.indices), h: 1e-6)
            let err = Ref.normalizedError(dE.doubles, fd)
            XCTAssertLessThan(err, 1e-6, "B = \(B): normalised gradient error \(err)")
            if B == 1 { XCTAssertEqual(loss, 0, accuracy: 1e-12, "one pair: softmax over one candidate") }
        }
        // Without a gradient buffer only the loss is computed.
        let e: [Float] = [1, 0, 0, 1, 0.8, 0.6, 0.6, 0.8]
        let l = e.withUnsafeBufferPointer { InfoNCE.inBatch(embeddings: $0.baseAddress!, pairs: 2, dim: 2, temperature: 0.5, dEmbeddings: nil) }
        XCTAssertEqual(l, RefOptim.inBatchInfoNCE(e.doubles, pairs: 2, dim: 2, tau: 0.5), accuracy: 1e-12)
    }
}
