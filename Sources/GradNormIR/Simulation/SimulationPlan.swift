import Foundation
import TransformerLite

extension EvolvingCorpusSimulation {
    /// The sessions: S1 holds the familiar domains (evenly); at each arrival session a new domain
    /// brings `newDomainShare` of the documents and the domains seen so far the rest; the other
    /// sessions draw from the domains seen so far. Each domain's documents (those with at least one
    /// relevant query) are drawn without replacement in a seeded order; the seen domains share a
    /// session round-robin, skipping exhausted ones (a session may then be smaller).
    public static func plan(datasets: [String: BEIRDataset], config: SimulationConfig) throws -> [SimulationSession] {
        let order = config.arrivalOrder
        for name in config.familiar + order where datasets[name] == nil {
            throw GradNormIRError.invalidInput("simulation: corpus '\(name)' is not loaded")
        }
        var pools: [String: [Int]] = [:]
        for (name, data) in datasets {
            var usable = data.corpus.indices.filter { !data.relevantQueries(of: data.corpus[$0].id).isEmpty }
            var rng = SplitMix64(seed: Seed.named(config.seed, name))
            seededShuffle(&usable, rng: &rng)
            pools[name] = usable
        }
        var cursor: [String: Int] = [:]
        func take(_ name: String) -> SimulationDocument? {
            let c = cursor[name, default: 0]
            guard let pool = pools[name], c < pool.count else { return nil }
            cursor[name] = c + 1
            return SimulationDocument(domain: name, index: pool[c])
        }
        func roundRobin(_ names: [String], _ count: Int, startingAt offset: Int) -> [SimulationDocument] {
            var out: [SimulationDocument] = []
            var i = offset, misses = 0
            while out.count < count && misses < names.count {
                if let d = take(names[i % names.count]) { out.append(d); misses = 0 } else { misses += 1 }
                i += 1
            }
            return out
        }
        var seen = config.familiar
        var arrivals = order.makeIterator()
        var result: [SimulationSession] = []
        let n = config.documentsPerSession
        for s in 1...config.sessions {
            var docs: [SimulationDocument] = []
            var arriving: String?
            if s == 1 {
                docs = roundRobin(config.familiar, n, startingAt: 0)
            } else if config.arrivalSessions.contains(s), let new = arrivals.next() {
                arriving = new
                let fresh = Int((Double(n) * config.newDomainShare).rounded())
                for _ in 0..<fresh { if let d = take(new) { docs.append(d) } }
                docs += roundRobin(seen, n - docs.count, startingAt: s)
                seen.append(new)
            } else {
                docs = roundRobin(seen, n, startingAt: s)
            }
            if docs.isEmpty {
                throw GradNormIRError.invalidInput("simulation: the corpora ran out of documents at session \(s)")
            }
            result.append(SimulationSession(number: s, arriving: arriving, documents: docs))
        }
        return result
    }
}
