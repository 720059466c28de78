import LopperCore

/// What the host does with a `score` hook's importance (plugin contract v2): keep the
/// top `1 - rate` at a granularity, then rescale the kept entries.

/// Where the top scores are compared.
public enum Granularity: String, CaseIterable, Sendable {
    /// Over the whole tensor.
    case tensor
    /// Within each output row.
    case row
    /// `n` of every `m` consecutive entries along rows.
    case nm
    /// Whole rows, ranked by the sum of their scores.
    case rows
    /// Whole columns, ranked likewise.
    case cols
    /// Over every tensor of the run that selects at this granularity (TIES's trim): the
    /// host scores them all first (`ModelSelection`). One tensor alone is its own model.
    case model
}

/// The factor for kept entries.
public enum RescaleRule: String, CaseIterable, Sendable {
    /// 1: importance methods keep their values.
    case none
    /// 1 / (1 - p), as DARE.
    case dare
    /// 1 / q, as DAREx-q.
    case q
    /// ||D||_1 / ||m * D||_1: norm matching, as mergekit rescales.
    case l1
}

/// A BOOL mask keeping a fraction `keep` of the highest `scores` at `granularity`
/// (ties: the lower index first). `n` and `m` are for `.nm`. `.model` on one tensor is
/// `.tensor`: the model-wide pass is the host's (`ModelSelection`).
public func keepTop(_ scores: Tensor, keep: Double, granularity: Granularity, n: Int = 2, m: Int = 4) throws -> Tensor {
    guard keep.isFinite, keep >= 0, keep <= 1 else { throw PruneError("keep_top: keep must be in [0, 1], got \(keep)") }
    func count(_ total: Int) -> Int { keptCount(keep, of: total) }
    switch granularity {
    case .tensor, .model:
        return try topKMask(scores, count(scores.count))
    case .row:
        return try topKMaskPerRow(scores, count(scores.shape.last ?? 0))
    case .nm:
        return try nmMask(scores, n: n, m: m)
    case .rows, .cols:
        guard scores.rank == 2 else {
            throw PruneError("keep_top: granularity \(granularity.rawValue) needs a 2-D tensor, got shape \(scores.shape.shapeText)")
        }
        let ones = Tensor([Float](repeating: 1, count: scores.count), shape: scores.shape)
        if granularity == .rows {
            let sums = try rowSums(scores)
            return try greater(try scaleRows(ones, try topKMask(sums, count(sums.count))), 0)
        }
        let sums = try colSums(scores)
        return try greater(try scaleCols(ones, try topKMask(sums, count(sums.count))), 0)
    }
}

/// The rescale factor of `rule` for drop rate `rate`. `.l1` needs the delta and the
/// mask; `.q` needs `q` in (0, 1].
public func rescaleFactor(_ rule: RescaleRule, rate: Double, q: Double? = nil, delta: Tensor? = nil, mask: Tensor? = nil) throws -> Double {
    switch rule {
    case .none: return 1
    case .dare: return rate >= 1 ? 1 : 1 / (1 - rate)
    case .q:
        guard let q, q > 0, q <= 1 else { throw PruneError("rescale q needs q in (0, 1], got \(q.map { "\($0)" } ?? "none")") }
        return 1 / q
    case .l1:
        guard let delta, let mask else { throw PruneError("rescale l1 needs the delta and the mask") }
        let kept = try norm(try select(mask, delta, 0), p: 1)
        return kept == 0 ? 1 : try norm(delta, p: 1) / kept
    }
}

/// How many of `total` entries a keep fraction keeps: the nearest integer, halves up.
public func keptCount(_ keep: Double, of total: Int) -> Int { Int((keep * Double(total) + 0.5).rounded(.down)) }
