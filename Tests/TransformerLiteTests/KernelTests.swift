import CKernels
import Foundation
import XCTest
import TestSupport
@testable import TransformerLite

/// Each Float32 kernel against its Float64 reference (forward), and each backward against central
/// finite differences of the Float64 reference of `L = Σ r ⊙ f(x)` for a random r.
/// Thresholds: forward max |Δ| ≤ 1e-5 (relative to O(1) values); gradients normalised error ≤ 1e-4.
final class KernelTests: XCTestCase {
    let fwdTol = 1e-5
    let gradTol = 1e-4

    /// Runs `body` with the baseline C kernels (`baseline` true) or with the ones chosen for this
    /// CPU (x86-64-v3 where it has AVX2 and FMA), passing the set's name; restores the choice after.
    func withKernelSet<R>(baseline: Bool, _ body: (String) -> R) -> R {
        let was = gni_use_baseline(baseline ? 1 : 0)
        defer { gni_use_baseline(was) }
        return body(ElementwiseKernels.instructionSet)
    }

    /// Runs `body` under both kernel sets, so that both builds of `CKernels` are checked.
    func forEachKernelSet(_ body: (String) -> Void) {
        for baseline in [true, false] { withKernelSet(baseline: baseline, body) }
    }

    func maxAbsDiff(_ a: [Float], _ b: [Double], file: StaticString = #filePath, line: UInt = #line) -> Double {
        XCTAssertEqual(a.count, b.count, "compared arrays differ in length", file: file, line: line)
        return zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }

    func testLinearForwardAndBackward() {
        var rng = TestRNG(seed: 1)
        let n = 5, inDim = 7, outDim = 6
        let x = rng.array(n * inDim), w = rng.array(outDim * inDim, scale: 0.5), b = rng.array(outDim)
        var y = [Float](repeating: 0, count: n * outDim)
        let xf = x.floats, wf = w.floats, bf = b.floats
        Linear.forward(y: &y, x: xf, weight: wf, bias: bf, rows: n, inDim: inDim, outDim: outDim)
        XCTAssertLessThan(maxAbsDiff(y, Ref.linear(x, w, b, n: n, inDim: inDim, outDim: outDim)), fwdTol)

        let r = rng.array(n * outDim)
        // Accumulation: start the gradients from a non-zero value and subtract it afterwards.
        var dX = [Float](repeating: 0.25, count: n * inDim), dW = [Float](repeating: 0.25, count: w.count)
        var dB = [Float](repeating: 0.25, count: outDim)
        Linear.backward(dX: &dX, dW: &dW, dB: &dB, dY: r.floats, x: xf, weight: wf, rows: n, inDim: inDim, outDim: outDim)
        let fdX = Ref.finiteDifference({ self.dot(r, Ref.linear($0, w, b, n: n, inDim: inDim, outDim: outDim)) }, at: x, indices: Array(x.indices))
        let fdW = Ref.finiteDifference({ self.dot(r, Ref.linear(x, $0, b, n: n, inDim: inDim, outDim: outDim)) }, at: w, indices: Array(w.indices))
        let fdB = Ref.finiteDifference({ self.dot(r, Ref.linear(x, w, $0, n: n, inDim: inDim, outDim: outDim)) }, at: b, indices: Array(b.indices))
        XCTAssertLessThan(Ref.normalizedError(dX.doubles.map { $0 - 0.25 }, fdX), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dW.doubles.map { $0 - 0.25 }, fdW), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dB.doubles.map { $0 - 0.25 }, fdB), gradTol)
    }

    func testLayerNormForwardAndBackward() {
        var rng = TestRNG(seed: 2)
        let n = 4, C = 9
        let x = rng.array(n * C, scale: 2), g = rng.array(C).map { 1 + $0 * 0.5 }, b = rng.array(C)
        var y = [Float](repeating: 0, count: n * C), mean = [Float](repeating: 0, count: n), rstd = mean
        LayerNorm.forward(out: &y, mean: &mean, rstd: &rstd, input: x.floats, weight: g.floats, bias: b.floats, rows: n, dim: C, eps: 1e-12)
        XCTAssertLessThan(maxAbsDiff(y, Ref.layerNorm(x, g, b, n: n, c: C, eps: 1e-12)), fwdTol)

        let r = rng.array(n * C)
        var dX = [Float](repeating: 0, count: n * C), dG = [Float](repeating: 0, count: C), dB = dG
        LayerNorm.backward(dInput: &dX, dWeight: &dG, dBias: &dB, dOut: r.floats, input: x.floats, mean: mean, rstd: rstd,
                           weight: g.floats, rows: n, dim: C)
        let f = { (x: [Double], g: [Double], b: [Double]) in self.dot(r, Ref.layerNorm(x, g, b, n: n, c: C, eps: 1e-12)) }
        XCTAssertLessThan(Ref.normalizedError(dX.doubles, Ref.finiteDifference({ f($0, g, b) }, at: x, indices: Array(x.indices))), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dG.doubles, Ref.finiteDifference({ f(x, $0, b) }, at: g, indices: Array(g.indices))), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dB.doubles, Ref.finiteDifference({ f(x, g, $0) }, at: b, indices: Array(b.indices))), gradTol)
    }

    func testGELUForwardAndBackward() {
        forEachKernelSet { set in checkGELU(set) }
    }

    func checkGELU(_ set: String) {
        var rng = TestRNG(seed: 3)
        // Cover the tails and the origin as well as random points.
        let x = rng.array(40, scale: 4) + [-8, -3, -1e-3, 0, 1e-3, 3, 8]
        var y = [Float](repeating: 0, count: x.count)
        GELU.forward(out: &y, input: x.floats, count: x.count)
        XCTAssertLessThan(maxAbsDiff(y, Ref.gelu(x)), fwdTol, set)
        let r = rng.array(x.count)
        var dX = [Float](repeating: 7, count: x.count)  // overwritten, not accumulated into
        GELU.backward(dInput: &dX, input: x.floats, dOut: r.floats, count: x.count)
        let fd = Ref.finiteDifference({ self.dot(r, Ref.gelu($0)) }, at: x, indices: Array(x.indices))
        XCTAssertLessThan(Ref.normalizedError(dX.doubles, fd), gradTol, set)
        // In place (dInput aliasing dOut), as the encoder's backward runs it: the same values.
        var inPlace = r.floats
        inPlace.withUnsafeMutableBufferPointer { d in
            GELU.backward(dInput: d.baseAddress!, input: x.floats, dOut: d.baseAddress!, count: x.count)
        }
        XCTAssertEqual(inPlace, dX, set)
    }

    func testExponentialKernelAgainstDouble() {
        forEachKernelSet { set in checkExponential(set) }
    }

    func checkExponential(_ set: String) {
        // A grid over the range softmax and GELU use, plus a tail of 5 (not a multiple of 8).
        let x = stride(from: -80.0, through: 20.0, by: 0.37).map { $0 } + [0, -1e-6, 1e-6, 1, -1]
        var y = [Float](repeating: 0, count: x.count)
        gni_exp(&y, x.floats, x.count)
        var worst = 0.0
        for (xi, yi) in zip(x.floats, y) {
            let want = Foundation.exp(Double(xi))  // of the float input: only the kernel's error
            worst = max(worst, abs(Double(yi) - want) / want)
        }
        XCTAssertLessThan(worst, 2e-7, "exp kernel relative error, \(set)")
        // Clamped far out; a NaN stays a NaN.
        var far = [Float](repeating: 1, count: 3)
        gni_exp(&far, [-1000, 1000, .nan], 3)
        XCTAssertLessThan(far[0], 2e-38)
        XCTAssertGreaterThan(far[0], 0)
        let top = Foundation.exp(Double(Float(88.3)))
        XCTAssertEqual(Double(far[1]) / top, 1, accuracy: 2e-7)
        XCTAssertTrue(far[2].isNaN, set)
    }

    func testSoftmaxRowsForwardAndBackwardAgainstDouble() {
        forEachKernelSet { set in checkSoftmax(set) }
    }

    func checkSoftmax(_ set: String) {
        var rng = TestRNG(seed: 9)
        for cols in [1, 7, 8, 9, 33] {
            let rows = 3
            let x = rng.array(rows * cols, scale: 6)
            var p = x.floats
            Attention.softmaxRows(&p, rows: rows, cols: cols)
            func ref(_ x: [Double]) -> [Double] {
                (0..<rows).flatMap { r -> [Double] in
                    let row = Array(x[(r * cols)..<((r + 1) * cols)])
                    let m = row.max()!
                    let e = row.map { Foundation.exp($0 - m) }
                    let s = e.reduce(0, +)
                    return e.map { $0 / s }
                }
            }
            XCTAssertLessThan(maxAbsDiff(p, ref(x)), 1e-6, "softmax, \(cols) columns, \(set)")
            let r = rng.array(rows * cols)
            var d = r.floats
            Attention.softmaxBackwardRows(&d, probs: p, rows: rows, cols: cols)
            let fd = Ref.finiteDifference({ self.dot(r, ref($0)) }, at: x, indices: Array(x.indices))
            XCTAssertLessThan(Ref.normalizedError(d.doubles, fd), gradTol, "softmax backward, \(cols) columns, \(set)")
        }
        // A NaN anywhere in a row makes the whole row NaN, and leaves the other rows alone.
        var withNaN: [Float] = [1, .nan, 3, 0.5, 0.25, 2]
        Attention.softmaxRows(&withNaN, rows: 2, cols: 3)
        XCTAssertTrue(withNaN[0..<3].allSatisfy(\.isNaN), set)
        XCTAssertFalse(withNaN[3..<6].contains(where: \.isNaN), set)
    }

    func testElementwiseKernelsDoNotDependOnTheSplit() {
        forEachKernelSet { set in checkSplit(set) }
    }

    func testBothKernelSetsAgree() {
        var rng = TestRNG(seed: 11)
        let x = rng.array(4099, scale: 5).floats, r = rng.array(4099).floats
        func run() -> (gelu: [Float], grad: [Float], softmax: [Float]) {
            var y = [Float](repeating: 0, count: x.count), d = y
            GELU.forward(out: &y, input: x, count: x.count)
            GELU.backward(dInput: &d, input: x, dOut: r, count: x.count)
            var p = Array(x[0..<(37 * 100)])
            Attention.softmaxRows(&p, rows: 37, cols: 100)
            return (y, d, p)
        }
        let (baseSet, base) = withKernelSet(baseline: true) { ($0, run()) }
        let (chosenSet, chosen) = withKernelSet(baseline: false) { ($0, run()) }
        XCTAssertEqual(baseSet, "baseline", "the switch to the baseline kernels")
        if chosenSet != baseSet {
            // Both sets really ran: FMA rounds some elements differently.
            XCTAssertNotEqual(base.gelu, chosen.gelu, "the baseline switch had no effect")
        }
        // Rounding differs (FMA), not more: relative to O(1) values.
        for (a, b, what) in [(base.gelu, chosen.gelu, "gelu"), (base.grad, chosen.grad, "gelu'"),
                             (base.softmax, chosen.softmax, "softmax")] {
            let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($0)) }.max()!
            XCTAssertLessThan(worst, 1e-6, "\(what): \(baseSet) vs \(chosenSet)")
        }
    }

    func checkSplit(_ set: String) {
        // The encoder splits GELU's range among workers at arbitrary points: an element must come
        // out the same whether it sits in a full block of eight or in a padded tail.
        var rng = TestRNG(seed: 10)
        let x = rng.array(45, scale: 4).floats, r = rng.array(45).floats
        var whole = [Float](repeating: 0, count: 45), split = whole
        var dWhole = whole, dSplit = whole
        GELU.forward(out: &whole, input: x, count: 45)
        GELU.backward(dInput: &dWhole, input: x, dOut: r, count: 45)
        x.withUnsafeBufferPointer { xp in r.withUnsafeBufferPointer { rp in
            split.withUnsafeMutableBufferPointer { sp in dSplit.withUnsafeMutableBufferPointer { dp in
                for (lo, hi) in [(0, 13), (13, 30), (30, 45)] {
                    GELU.forward(out: sp.baseAddress! + lo, input: xp.baseAddress! + lo, count: hi - lo)
                    GELU.backward(dInput: dp.baseAddress! + lo, input: xp.baseAddress! + lo,
                                  dOut: rp.baseAddress! + lo, count: hi - lo)
                }
            } }
        } }
        XCTAssertEqual(split, whole, set)
        XCTAssertEqual(dSplit, dWhole, set)
    }

    func testAttentionForwardAndBackwardOnPackedSequences() {
        var rng = TestRNG(seed: 4)
        let C = 8, H = 2
        let lengths = [3, 1, 5]
        let batch = PackedBatch(lengths.map { Array(repeating: 0, count: $0) })
        let n = batch.tokenCount
        let qkv = rng.array(n * 3 * C)
        var ctx = [Float](repeating: 0, count: n * C)
        var scratch = [Float](repeating: 0, count: Attention.scratchCount(maxLength: batch.maxLength))
        scratch.withUnsafeMutableBufferPointer { sc in
            Attention.forward(ctx: &ctx, qkv: qkv.floats, spans: batch.spans, dim: C, heads: H, scratch: sc)
        }
        func ref(_ q: [Double]) -> [Double] {
            var out: [Double] = []
            for s in batch.spans {
                out += Ref.attention(Array(q[(s.start * 3 * C)..<((s.start + s.length) * 3 * C)]), t: s.length, c: C, heads: H)
            }
            return out
        }
        XCTAssertLessThan(maxAbsDiff(ctx, ref(qkv)), fwdTol)

        let r = rng.array(n * C)
        var dqkv = [Float](repeating: 0, count: n * 3 * C)
        var recomputed = [Float](repeating: 0, count: n * C)
        scratch.withUnsafeMutableBufferPointer { sc in
            Attention.backward(dqkv: &dqkv, ctx: &recomputed, dctx: r.floats, qkv: qkv.floats,
                               spans: batch.spans, dim: C, heads: H, scratch: sc)
        }
        XCTAssertEqual(recomputed, ctx, "the backward's recomputed context must equal the forward's bit for bit")
        let fd = Ref.finiteDifference({ self.dot(r, ref($0)) }, at: qkv, indices: Array(qkv.indices))
        XCTAssertLessThan(Ref.normalizedError(dqkv.doubles, fd), gradTol)
    }

    func testLayerNormApplyRecomputesForwardBitForBit() {
        var rng = TestRNG(seed: 8)
        let n = 6, C = 11
        let x = rng.array(n * C, scale: 3).floats, g = rng.array(C).floats, b = rng.array(C).floats
        var y = [Float](repeating: 0, count: n * C), y2 = y, mean = [Float](repeating: 0, count: n), rstd = mean
        LayerNorm.forward(out: &y, mean: &mean, rstd: &rstd, input: x, weight: g, bias: b, rows: n, dim: C, eps: 1e-12)
        LayerNorm.apply(out: &y2, input: x, mean: mean, rstd: rstd, weight: g, bias: b, rows: n, dim: C)
        XCTAssertEqual(y, y2)
    }

    func testDropoutMaskForwardBackwardAndSeeding() {
        let n = 10_000, p: Float = 0.1
        var m1 = [UInt8](repeating: 0, count: n), m2 = m1
        var r1 = SplitMix64(seed: 42), r2 = SplitMix64(seed: 42)
        Dropout.makeMask(&m1, count: n, p: p, rng: &r1)
        Dropout.makeMask(&m2, count: n, p: p, rng: &r2)
        XCTAssertEqual(m1, m2, "same seed, same mask")
        let dropped = m1.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / Double(n), Double(p), accuracy: 0.015)
        var rng = TestRNG(seed: 9)
        let x = rng.array(n), r = rng.array(n)
        for rescale in [false, true] {
            let scale = rescale ? 1 / (1 - Double(p)) : 1
            var y = [Float](repeating: 0, count: n)
            Dropout.forward(out: &y, input: x.floats, mask: m1, count: n, p: p, rescale: rescale)
            let expected = (0..<n).map { m1[$0] == 0 ? 0 : x[$0] * scale }
            XCTAssertLessThan(maxAbsDiff(y, expected), fwdTol)
            // L = Σ r ⊙ dropout(x) is linear: its gradient is r ⊙ mask · scale; check by differences.
            var dX = [Float](repeating: 0, count: n)
            Dropout.backward(dInput: &dX, dOut: r.floats, mask: m1, count: n, p: p, rescale: rescale)
            let idx = Array(0..<200)
            let fd = Ref.finiteDifference({ q in zip(r, (0..<n).map { m1[$0] == 0 ? 0 : q[$0] * scale }).map(*).reduce(0, +) },
                                          at: x, indices: idx)
            XCTAssertLessThan(Ref.normalizedError(idx.map { Double(dX[$0]) }, fd), gradTol)
        }
    }

    func testInfoNCEForwardAndBackward() {
        var rng = TestRNG(seed: 10)
        let S = 6, C = 7, tau = 0.05
        let e = rng.array(S * C)
        func ref(_ e: [Double]) -> Double {
            func u(_ i: Int) -> [Double] { Ref.l2normalize(Array(e[(i * C)..<((i + 1) * C)])) }
            let z = (1..<S).map { j in zip(u(0), u(j)).map(*).reduce(0, +) / tau }
            let mx = z.max()!
            return mx + log(z.map { exp($0 - mx) }.reduce(0, +)) - z[0]
        }
        var dE = [Float](repeating: 0, count: S * C)
        let loss = InfoNCE.forwardBackward(embeddings: e.floats, rows: S, dim: C, temperature: tau, dEmbeddings: &dE)
        XCTAssertEqual(loss, ref(e), accuracy: 1e-4 * abs(ref(e)))
        let fd = Ref.finiteDifference(ref, at: e, indices: Array(e.indices))
        XCTAssertLessThan(Ref.normalizedError(dE.doubles, fd), gradTol)
    }

    func testEmbeddingForwardAndSparseBackward() {
        var rng = TestRNG(seed: 5)
        let V = 6, P = 5, C = 4
        let wte = rng.array(V * C), wpe = rng.array(P * C), wtt = rng.array(2 * C)
        let batch = PackedBatch([[1, 3, 3], [5, 0]])
        let n = batch.tokenCount
        var out = [Float](repeating: 0, count: n * C)
        Embedding.forward(out: &out, ids: batch.ids, positions: batch.positions, wte: wte.floats, wpe: wpe.floats,
                          wtt: wtt.floats, tokens: n, dim: C)
        var expected = [Double]()
        for t in 0..<n {
            for i in 0..<C {
                expected.append(wte[Int(batch.ids[t]) * C + i] + wpe[Int(batch.positions[t]) * C + i] + wtt[i])
            }
        }
        XCTAssertLessThan(maxAbsDiff(out, expected), fwdTol)

        let r = rng.array(n * C)
        var dWte = [Float](repeating: 0, count: V * C), dWpe = [Float](repeating: 0, count: P * C)
        var dWtt = [Float](repeating: 0, count: 2 * C)
        Embedding.backward(dWte: &dWte, dWpe: &dWpe, dWtt: &dWtt, dOut: r.floats, ids: batch.ids,
                           positions: batch.positions, tokens: n, dim: C)
        func f(_ wte: [Double], _ wpe: [Double], _ wtt: [Double]) -> Double {
            var s = 0.0
            for t in 0..<n { for i in 0..<C {
                s += r[t * C + i] * (wte[Int(batch.ids[t]) * C + i] + wpe[Int(batch.positions[t]) * C + i] + wtt[i])
            } }
            return s
        }
        XCTAssertLessThan(Ref.normalizedError(dWte.doubles, Ref.finiteDifference({ f($0, wpe, wtt) }, at: wte, indices: Array(wte.indices))), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dWpe.doubles, Ref.finiteDifference({ f(wte, $0, wtt) }, at: wpe, indices: Array(wpe.indices))), gradTol)
        XCTAssertLessThan(Ref.normalizedError(dWtt.doubles, Ref.finiteDifference({ f(wte, wpe, $0) }, at: wtt, indices: Array(wtt.indices))), gradTol)
        // Sparse: rows of unused tokens (2 and 4) stay exactly zero.
        XCTAssertEqual(Array(dWte[(2 * C)..<(3 * C)]), [Float](repeating: 0, count: C))
        XCTAssertEqual(Array(dWte[(4 * C)..<(5 * C)]), [Float](repeating: 0, count: C))
    }

    func testPoolingAndNormalizeForwardAndBackward() {
        var rng = TestRNG(seed: 6)
        let C = 5
        let batch = PackedBatch([[0, 0, 0], [0], [0, 0]])
        let n = batch.tokenCount, S = batch.spans.count
        let hidden = rng.array(n * C)
        for mode in [EncoderConfig.Pooling.mean, .cls] {
            func ref(_ h: [Double]) -> [Double] {
                var out: [Double] = []
                for s in batch.spans {
                    var p = [Double](repeating: 0, count: C)
                    for i in 0..<C {
                        p[i] = mode == .cls ? h[s.start * C + i]
                            : (s.start..<(s.start + s.length)).map { h[$0 * C + i] }.reduce(0, +) / Double(s.length)
                    }
                    out += Ref.l2normalize(p)
                }
                return out
            }
            var pooled = [Float](repeating: 0, count: S * C), out = pooled, norms = [Float](repeating: 0, count: S)
            Pooling.forward(out: &pooled, hidden: hidden.floats, spans: batch.spans, dim: C, mode: mode)
            L2Normalize.forward(out: &out, norms: &norms, input: pooled, rows: S, dim: C)
            XCTAssertLessThan(maxAbsDiff(out, ref(hidden)), fwdTol)
            let r = rng.array(S * C)
            var dPooled = [Float](repeating: 0, count: S * C), dH = [Float](repeating: 0, count: n * C)
            L2Normalize.backward(dInput: &dPooled, dOut: r.floats, out: out, norms: norms, rows: S, dim: C)
            Pooling.backward(dHidden: &dH, dOut: dPooled, spans: batch.spans, dim: C, mode: mode)
            let fd = Ref.finiteDifference({ self.dot(r, ref($0)) }, at: hidden, indices: Array(hidden.indices))
            XCTAssertLessThan(Ref.normalizedError(dH.doubles, fd), gradTol, "\(mode)")
        }
    }

    func testGemmTransposesAgainstNaiveProduct() {
        var rng = TestRNG(seed: 7)
        let m = 3, n = 4, k = 5
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = rng.array(m * k), b = rng.array(k * n)
            var c = [Float](repeating: 1, count: m * n)
            BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 2, a: a.floats, lda: ta ? m : k,
                      b: b.floats, ldb: tb ? k : n, beta: 0.5, c: &c, ldc: n)
            var expected = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]) }
                expected[i * n + j] = 2 * s + 0.5
            } }
            XCTAssertLessThan(maxAbsDiff(c, expected), fwdTol, "transA \(ta) transB \(tb)")
        }
    }
}
