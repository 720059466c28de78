import Synchronization

/// Which Bernoulli masks a computation drew, so that a sparse writer can try to address
/// a pruned tensor's positions by (seed, stream, threshold) instead of storing them.
/// A record is a candidate only: the writer checks the output against the regenerated
/// mask before relying on it (a plugin may invert, combine or ignore what it drew).
public struct MaskDraw: Sendable, Equatable {
    /// The 32-bit keep threshold of the rule (`keep * 2^32`, see `KeepRule`).
    public let threshold: UInt64
    /// The stream: the seed and the FNV-1a hash of its name.
    public let key: RandomKey
    /// Elements drawn (the mask's length).
    public let count: Int
}

/// The draws made while `recording` runs on this thread (or task).
public final class MaskDrawLog: Sendable {
    @TaskLocal static var current: MaskDrawLog?
    private let entries = Mutex<[MaskDraw]>([])

    public init() {}

    public var draws: [MaskDraw] { entries.withLock { $0 } }

    /// Runs `body`, recording every Bernoulli mask drawn by it into this log.
    public func recording<T>(_ body: () throws -> T) rethrows -> T {
        try Self.$current.withValue(self) { try body() }
    }

    static func record(keep: Double, key: RandomKey, count: Int) {
        guard let log = current, let rule = try? KeepRule(keep) else { return }
        let draw = MaskDraw(threshold: rule.threshold, key: key, count: count)
        log.entries.withLock { if !$0.contains(draw) { $0.append(draw) } }
    }
}

extension KeepRule {
    /// `T = 65536 H + L`, the rule's threshold on 32 bits of draw (2^32 keeps all).
    var threshold: UInt64 { UInt64(high) << 16 | UInt64(low) }
}

/// The keep probability whose rule has threshold `threshold` (exact: `T / 2^32`).
public func bernoulliKeep(threshold: UInt64) throws -> Double {
    guard threshold <= 1 << 32 else { throw TensorError.invalid("bernoulli: threshold \(threshold) is above 2^32") }
    return Double(threshold) / 4_294_967_296
}

/// The threshold of keep probability `keep` (what `bernoulliMask` compares draws with).
public func bernoulliThreshold(keep: Double) throws -> UInt64 { try KeepRule(keep).threshold }

extension RandomKey {
    /// The stream of a name known only by its FNV-1a hash (as sparse deltas record it).
    public init(seed: UInt64, nameHash: UInt64) {
        self.seed = seed
        self.nameHash = nameHash
    }
}
