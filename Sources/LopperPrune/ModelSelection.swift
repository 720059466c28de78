import LopperCore

/// `granularity = model`, TIES-Merging's trim (Yadav et al., 2023, "TIES-Merging: Resolving
/// Interference When Merging Models", arXiv:2306.01708): keep the top `1 - rate` of the
/// scores of every tensor of the run that selects at this granularity, not of each tensor.
/// Made before the per-tensor pass by streaming twice over those tensors (each one's scores
/// computed, counted into the key histograms of `StreamedTopK`, dropped: memory stays one
/// tensor's scores and 1 MB of counts), then each tensor's mask is taken at the model's
/// threshold. Ties at the threshold go to the tensors in the run's order, lower index
/// first, in whatever order the tensors are pruned: a tensor's share needs the equal counts
/// of the tensors before it, recorded as their masks are made and computed for any not made yet.
public final class ModelSelection {
    /// The tensors selected together, in the run's order.
    public let names: [String]
    public let rate: Double
    public let threshold: StreamedTopK.Threshold
    private let position: [String: Int]
    private let scores: (String) throws -> Tensor
    private var equalCounts: [String: Int] = [:]

    /// Streams over `names` with `scores` (the method's importance of a tensor, the same on
    /// every call) and finds the model's threshold for keeping `1 - rate` of all entries.
    public init(names: [String], rate: Double, scores: @escaping (String) throws -> Tensor) throws {
        var topK = StreamedTopK()
        for name in names { try topK.countFirst(try scores(name)) }
        if try topK.finishFirst(keep: keptCount(1 - rate, of: topK.total)) {
            for name in names { try topK.countSecond(try scores(name)) }
        }
        self.names = names
        self.rate = rate
        self.scores = scores
        threshold = topK.finish()
        position = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The mask of tensor `name` from its `scores`.
    public func mask(_ scores: Tensor, name: String) throws -> Tensor {
        guard let index = position[name] else { throw PruneError("tensor \"\(name)\" is not in the model-wide selection") }
        var before = 0
        for earlier in names[..<index] {
            if equalCounts[earlier] == nil {
                equalCounts[earlier] = try streamedTopKMask(try self.scores(earlier), threshold, tiesBefore: 0).equal
            }
            before += equalCounts[earlier] ?? 0
        }
        let (mask, equal) = try streamedTopKMask(scores, threshold, tiesBefore: before)
        equalCounts[name] = equal
        return mask
    }
}
