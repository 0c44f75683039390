import Foundation

/// The update rules compared.
public enum UpdateStrategy: String, CaseIterable, Codable, Sendable {
    case zeroShot = "zero-shot"
    case naive
    case gradnormir
    case knn
    case mahalanobis

    /// The detector whose OOD ratio triggers the update (nil: a fixed rule).
    var detector: TriggerDetector? {
        switch self {
        case .zeroShot, .naive: return nil
        case .gradnormir: return .gradnormir
        case .knn: return .knn
        case .mahalanobis: return .mahalanobis
        }
    }
}

/// A detector that decides a triggered strategy's updates.
enum TriggerDetector: String, Sendable {
    case gradnormir, knn, mahalanobis
}

/// One strategy at one session.
public struct StrategySession: Codable, Sendable {
    public let strategy: String
    public let session: Int
    /// OOD ratio of the session's documents by the strategy's detector (nil: no detector or S1).
    public let oodRatio: Double?
    /// Whether the strategy updated its retriever at this session.
    public let updated: Bool
    /// Updates so far, this one included.
    public let updates: Int
    /// Recall@k of all queries seen so far, over all documents seen so far, after the decision.
    public let recall: Double
    /// recall / the session's upper bound, in percent (filled in once every strategy has run).
    public var recallPercent: Double
    /// Seconds spent deciding (detector) and updating at this session, and so far.
    public let detectSeconds: Double
    public let updateSeconds: Double
    public let cumulativeSeconds: Double
    /// Optimiser steps of this session's update (0 if none), and so far.
    public let updateSteps: Int
    public let cumulativeSteps: Int
}

/// One session's results for every strategy.
public struct SessionResult: Codable, Sendable {
    public let session: Int
    public let arriving: String?
    public let documents: Int
    public let cumulativeDocuments: Int
    public let queries: Int
    /// The upper bound: the best Recall@k any compared strategy reached at this session.
    public let upperBound: Double
    public var strategies: [StrategySession]
}
