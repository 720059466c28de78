// Top-k over many tensors seen one at a time (every selected tensor of a model, for
// TIES's model-wide trim), exact and in bounded memory: the histograms of the order keys
// that `histogramSelectKey` builds for one tensor, summed over the tensors. A first pass
// over all of them counts the high 16 bits of the keys, a second the low 16 bits in the
// bucket that holds the k-th largest; then each tensor's mask is its keys above that key
// and its share of the keys equal to it, handed out in the tensors' order.

/// The k-th largest order key of a set of tensors, built pass by pass.
public struct StreamedTopK: Sendable {
    /// The tensors' elements seen in the first pass.
    public private(set) var total = 0
    private var high = [Int](repeating: 0, count: keyBins)
    private var low = [Int](repeating: 0, count: keyBins)
    private var bucket: UInt32 = 0, rankInBucket = 0, rank = 0
    private var stage = 0

    public init() {}

    /// First pass: count one tensor (in the order the masks will be handed out).
    public mutating func countFirst(_ scores: Tensor) throws {
        try requireComputable("StreamedTopK", scores.dtype)
        precondition(stage == 0, "StreamedTopK: first pass after the second")
        for (bin, count) in keyHistogram(scores, within: nil).enumerated() where count > 0 { high[bin] += count }
        total += scores.count
    }

    /// Ends the first pass for keeping the `k` largest of `total`; false when no second pass
    /// is needed (k is 0 or every element).
    public mutating func finishFirst(keep k: Int) throws -> Bool {
        guard k >= 0, k <= total else { throw TensorError.invalid("StreamedTopK: k = \(k) is outside 0...\(total)") }
        stage = 1
        rank = total - k
        guard k > 0, k < total else { return false }
        (bucket, rankInBucket) = locate(rank, in: high)
        return true
    }

    /// Second pass: the same tensors again, counting the keys in the answer's bucket.
    public mutating func countSecond(_ scores: Tensor) throws {
        precondition(stage == 1, "StreamedTopK: second pass before the first ended")
        for (bin, count) in keyHistogram(scores, within: bucket).enumerated() where count > 0 { low[bin] += count }
    }

    /// Ends the selection: the threshold each tensor's mask is taken at.
    public mutating func finish() -> Threshold {
        stage = 2
        if rank == total { return Threshold(key: UInt32.max, ties: 0) }   // keep none: no key is above the largest
        if rank == 0 { return Threshold(key: 0, ties: total) }            // keep all: every key is at least 0
        let (digit, within) = locate(rankInBucket, in: low)
        let key = bucket << 16 | digit
        // Keys equal to the threshold that are kept: those of rank >= `rank` among them.
        let equal = low[Int(digit)]
        return Threshold(key: key, ties: equal - within)
    }

    /// Where the model's top-k lies: keys above `key` are kept, and `ties` of the keys equal to it.
    public struct Threshold: Sendable, Equatable {
        let key: UInt32
        /// How many of the keys equal to the threshold are kept, model-wide.
        public let ties: Int
        /// The threshold as a value (NaN when nothing but NaN is kept or nothing at all).
        public var value: Float { key == UInt32.max ? .infinity : keyValue(key) }
    }
}

/// The mask of one tensor of a `StreamedTopK` selection: its scores above the threshold, and
/// of those equal to it the first in index order while `tiesBefore` (the equal scores of
/// the tensors before it) leaves any of `threshold.ties`; with its count of equal scores.
public func streamedTopKMask(_ scores: Tensor, _ threshold: StreamedTopK.Threshold, tiesBefore: Int) throws -> (mask: Tensor, equal: Int) {
    try requireComputable("streamedTopKMask", scores.dtype)
    if threshold.key == UInt32.max { return (try Tensor(zeros: scores.shape, dtype: .bool), 0) }
    let result = try maskAtThreshold(scores, threshold.key) { _, _ in threshold.ties - tiesBefore }
    return (result.mask, result.equal)
}
