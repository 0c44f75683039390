import Foundation
import TransformerLite

extension Metrics {
    /// Recall@k of one query: the share of its relevant documents among the documents it
    /// retrieved (its top k). The one definition of recall@k, for `evaluate`, `recall` and the
    /// simulation.
    public static func queryRecall(relevant: Set<Int>, retrieved: [Int]) -> Double {
        precondition(!relevant.isEmpty, "queryRecall: a query without relevant documents has no recall")
        return Double(relevant.intersection(retrieved).count) / Double(relevant.count)
    }

    /// Per-document recall@k from a retrieval run (METHOD.md, "Ground truth and metrics").
    ///
    /// - Parameters:
    ///   - rankings: for each query q (index into this array), its retrieved document indices in
    ///     rank order (best first). Duplicates within a list count once.
    ///   - qrels: query index → the set of its relevant document indices (BEIR score ≥ 1 already
    ///     applied). Queries without an entry, or with an empty set, are not counted.
    ///   - documentCount: the number of documents; every index must be in `0..<documentCount`.
    ///   - k: if given, only the first k entries of each ranking count (recall@k of a deeper run);
    ///     otherwise whole lists.
    /// - Returns: for each document d, nq(d) = number of queries relevant to d, hits(d) = how many
    ///   of them retrieved d within the top k, and recall(d) = hits(d)/nq(d) (nil when nq(d) = 0).
    /// - Throws: `GradNormIRError.invalidInput` for an index out of range or k < 1.
    public static func perDocumentRecall(rankings: [[Int]], qrels: [Int: Set<Int>], documentCount: Int,
                                         k: Int? = nil) throws -> DocumentRecall {
        guard documentCount >= 0 else {
            throw GradNormIRError.invalidInput("per-document recall: documentCount must be >= 0 (got \(documentCount))")
        }
        if let k, k < 1 { throw GradNormIRError.invalidInput("per-document recall: k must be >= 1 (got \(k))") }
        var nq = [Int](repeating: 0, count: documentCount)
        var hits = [Int](repeating: 0, count: documentCount)
        for (q, list) in rankings.enumerated() {
            if let bad = list.first(where: { $0 < 0 || $0 >= documentCount }) {
                throw GradNormIRError.invalidInput(
                    "per-document recall: query \(q) retrieved document \(bad), outside 0..<\(documentCount)")
            }
        }
        for q in qrels.keys.sorted() {
            let relevant = qrels[q]!
            guard q >= 0 && q < rankings.count else {
                throw GradNormIRError.invalidInput(
                    "per-document recall: qrels name query \(q) but rankings cover queries 0..<\(rankings.count)")
            }
            if let bad = relevant.first(where: { $0 < 0 || $0 >= documentCount }) {
                throw GradNormIRError.invalidInput(
                    "per-document recall: qrels of query \(q) name document \(bad), outside 0..<\(documentCount)")
            }
            let top = Set(k.map { rankings[q].prefix($0) } ?? rankings[q][...])
            for d in relevant {
                nq[d] += 1
                if top.contains(d) { hits[d] += 1 }
            }
        }
        return DocumentRecall(relevantQueryCount: nq, hitCount: hits)
    }
}

/// Per-document recall of a retrieval run (`Metrics.perDocumentRecall`), indexed by document.
public struct DocumentRecall: Sendable, Equatable {
    /// nq(d): the number of queries relevant to d.
    public let relevantQueryCount: [Int]
    /// How many of d's relevant queries retrieved d within the top k.
    public let hitCount: [Int]

    public init(relevantQueryCount: [Int], hitCount: [Int]) {
        precondition(relevantQueryCount.count == hitCount.count)
        self.relevantQueryCount = relevantQueryCount
        self.hitCount = hitCount
    }

    /// recall(d) = hits(d) / nq(d); nil for a document with no relevant query.
    public var recall: [Double?] {
        zip(hitCount, relevantQueryCount).map { h, n in n > 0 ? Double(h) / Double(n) : nil }
    }
}

/// Recall@k per query (see `Evaluation.queryRecall`).
public struct QueryRecall: Sendable, Equatable {
    public let ids: [String]
    /// recall@k of `ids[i]`: the share of its relevant documents in its top k.
    public let recall: [Double]
    public let k: Int
    /// The mean over the queries.
    public var mean: Double { recall.reduce(0, +) / Double(max(1, recall.count)) }
}

/// Which queries of a dataset to use: all, or one of two halves fixed by a seeded hash of the
/// query id — so settings can be chosen on the `dev` half and reported on the untouched `test`
/// half. The halves are disjoint, cover every query, and do not depend on file order.
public enum QuerySplit: String, Sendable, CaseIterable {
    case all, dev, test

    public func contains(_ queryId: String, seed: UInt64 = 0) -> Bool {
        switch self {
        case .all: return true
        case .dev, .test:
            var h = FNV1a64()
            h.add(bytes: withUnsafeBytes(of: seed.littleEndian) { Array($0) })
            h.add(bytes: queryId.utf8)
            // The top bit: FNV-1a's low bits mix poorly for ids that differ only in their last byte.
            var mix = SplitMix64(seed: h.value)
            let isDev = (mix.next() >> 63) == 0
            return isDev == (self == .dev)
        }
    }
}

/// Two retrievers' recall@k on the same queries, paired: how many queries the candidate gains
/// or loses against the baseline, and the exact two-sided sign test on those that differ.
public struct RecallComparison: Sendable {
    public let baseline: QueryRecall
    public let candidate: QueryRecall
    /// Queries whose recall@k is higher (lower) with the candidate.
    public let gained: Int
    public let lost: Int
    /// Exact two-sided sign-test p-value of gained vs lost (1 when no query differs).
    public let signTestP: Double

    /// - Throws: `GradNormIRError.invalidInput` when the two runs are not over the same queries.
    public init(baseline: QueryRecall, candidate: QueryRecall) throws {
        guard baseline.ids == candidate.ids, baseline.k == candidate.k else {
            throw GradNormIRError.invalidInput("recall comparison: the two runs cover different queries or depths")
        }
        self.baseline = baseline
        self.candidate = candidate
        var g = 0, l = 0
        for (a, b) in zip(baseline.recall, candidate.recall) {
            if b > a { g += 1 } else if b < a { l += 1 }
        }
        gained = g
        lost = l
        signTestP = Metrics.signTest(gained: g, lost: l)
    }

    public var delta: Double { candidate.mean - baseline.mean }
}
