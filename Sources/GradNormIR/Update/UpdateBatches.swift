import Foundation
import TransformerLite

// The deterministic batch plan of an update (see `UpdateTrainer`).
extension UpdateTrainer {
    /// Indices into `contents` of the new documents of step t (1-based): `newPerBatch` of them.
    public func batchDocuments(step t: Int) -> [Int] {
        let n = contents.count, b = newPerBatch
        let perEpoch = (n + b - 1) / b
        let epoch = (t - 1) / perEpoch, k = (t - 1) % perEpoch
        if plannedEpoch?.epoch != epoch {
            var rng = SplitMix64(seed: Seed.mixed(config.seed, Seed.epochTag, UInt64(epoch)))
            var perm = Array(0..<n)
            seededShuffle(&perm, rng: &rng)
            var batches: [[Int]]
            switch config.batching {
            case .random:
                batches = stride(from: 0, to: n, by: b).map { Array(perm[$0 ..< min($0 + b, n)]) }
            case .neighbours:
                batches = Self.neighbourBatches(order: perm, neighbours: neighbourLists, batchSize: b)
                seededShuffle(&batches, rng: &rng)
            }
            plannedEpoch = (epoch, batches)
        }
        return plannedEpoch!.batches[k]
    }

    /// Greedy neighbour batches (see `UpdateBatching.neighbours`): every document exactly once,
    /// ⌈n / b⌉ batches, all of size b but the last one formed.
    public static func neighbourBatches(order: [Int], neighbours: [[Int]], batchSize b: Int) -> [[Int]] {
        var placed = [Bool](repeating: false, count: order.count)
        var batches: [[Int]] = []
        var fill = 0  // next position of `order` to fill up from
        for start in order where !placed[start] {
            var batch = [start]
            placed[start] = true
            for d in neighbours[start] where batch.count < b && !placed[d] {
                batch.append(d)
                placed[d] = true
            }
            while batch.count < b && fill < order.count {
                let d = order[fill]
                fill += 1
                if !placed[d] { batch.append(d); placed[d] = true }
            }
            batches.append(batch)
        }
        return batches
    }

    /// Indices into `replayContents` of the replay documents of step t: `replaySlots` distinct
    /// ones, drawn afresh for every step (seeded by the seed and t).
    public func replayDocuments(step t: Int) -> [Int] {
        guard replaySlots > 0 else { return [] }
        return seededSample(count: replayContents.count, sample: replaySlots,
                            seed: Seed.mixed(config.seed, Seed.replayTag, UInt64(t)))
    }

    /// The 2B sequences of step t: B queries ([CLS] crop [SEP]), then the B documents — the new
    /// documents of the step first, then its replay documents.
    public func batchSequences(step t: Int) -> [[Int]] {
        let docs = batchDocuments(step: t).map { contents[$0] } + replayDocuments(step: t).map { replayContents[$0] }
        var queries: [[Int]] = [], full: [[Int]] = []
        for (slot, c) in docs.enumerated() {
            var rng = SplitMix64(seed: Seed.mixed(config.seed, UInt64(t), UInt64(slot)))
            let r = config.cropMin + (config.cropMax - config.cropMin) * rng.nextUnitDouble()
            let length = min(c.count, max(1, Int(Double(c.count) * r)))
            let start = Int(rng.next() % UInt64(c.count - length + 1))
            queries.append([cls] + c[start ..< start + length] + [sep])
            if config.positive == .rest && length < c.count {
                full.append([cls] + c[..<start] + c[(start + length)...] + [sep])
            } else {
                full.append([cls] + c + [sep])
            }
        }
        return queries + full
    }
}
