import Foundation
import LopperIO

/// DAREx-q's search for one scalar (Deng et al. 2024): the global rescale q in [1-p, 1], or the
/// analytical mode's eta, that optimises an objective averaged over several mask seeds. The
/// objective comes from above (LopperCalibration evaluates models); this type only walks the grid.
///
/// Candidates: a coarse grid spaced geometrically from `lower` to `upper` (for q: from 1-p, DARE's
/// own rescale, up to 1), walked upward until 3 steps do not improve; then a grid `refinement`
/// times finer (geometrically) around the best, walked outward on each side with the same stop
/// rule. A step counts against the walk only when it is worse than the best by more than the
/// seeds' noise (the standard errors of the two means): at high rates the objective is flat at
/// DARE's end (chance accuracy), and noise there must not end the walk before the rise. A geometric grid puts as many points in [0.001, 0.01] as in [0.1, 1], which is
/// where the optimum lies at high drop rates (p = 0.999: best q near 5 (1-p) on a real encoder).
public struct QGridSearch {
    /// The coarse grid: `steps` points from `lower` to `upper`, each `ratio` times the previous.
    public struct Grid: Codable, Sendable, Equatable {
        public var lower: Double
        public var upper: Double
        public var steps: Int
        public var refinement: Int

        public init(lower: Double, upper: Double, steps: Int = 16, refinement: Int = 10) throws {
            guard lower > 0, lower.isFinite, upper.isFinite, upper > lower else {
                throw PruneError("q search: the grid needs 0 < lower < upper, got lower = \(lower), upper = \(upper)")
            }
            guard steps >= 2, steps <= 10_000 else { throw PruneError("q search: steps must be in 2...10000, got \(steps)") }
            guard refinement >= 1, refinement <= 1000 else { throw PruneError("q search: refinement must be in 1...1000, got \(refinement)") }
            self.lower = lower; self.upper = upper; self.steps = steps; self.refinement = refinement
        }

        /// q's grid for drop rate `p`: from 1-p (or `lower`) up to 1 (or `upper`).
        public static func q(rate p: Double, lower: Double? = nil, upper: Double? = nil, steps: Int? = nil) throws -> Grid {
            guard p > 0, p < 1 else { throw PruneError("q search: rate must be in (0, 1), got \(p)") }
            let low = lower ?? (1 - p), high = upper ?? 1
            guard low >= (1 - p) * (1 - 1e-12) else {
                throw PruneError("q search: q_min = \(low) is below 1 - rate = \(1 - p) (q must be at least 1 - rate)")
            }
            guard high <= 1 else { throw PruneError("q search: q_max = \(high) is above 1") }
            return try Grid(lower: low, upper: high, steps: steps ?? 16)
        }

        /// Ratio of neighbouring coarse points.
        public var ratio: Double { Foundation.pow(upper / lower, 1 / Double(steps - 1)) }
        /// Ratio of neighbouring fine points: one fine-grid step.
        public var fineRatio: Double { Foundation.pow(ratio, 1 / Double(refinement)) }
        public var coarse: [Double] {
            (0..<steps).map { $0 == steps - 1 ? upper : lower * Foundation.pow(ratio, Double($0)) }
        }
    }

    public let grid: Grid
    public let seeds: [UInt64]
    public let higherIsBetter: Bool
    /// With 3 or more seeds, leave out the seed value farthest from their mean (as the DAREx code does).
    public let dropOutlierSeed: Bool
    /// The objective of one candidate: the searched value and a mask seed.
    private let objective: (_ value: Double, _ seed: UInt64) throws -> Double

    public struct Point: Codable, Sendable {
        /// The searched value (q, or eta for the analytical mode).
        public var q: Double
        /// The objective, averaged over the seeds used.
        public var value: Double
        /// The objective of each seed, in the order of `seeds`.
        public var seedValues: [Double]?
    }
    public struct Result: Codable, Sendable {
        public var best: Point
        /// Plain DARE with the same masks (q = 1 - p), when the caller evaluated it.
        public var dare: Point?
        public var curve: [Point]
    }

    public init(grid: Grid, seeds: [UInt64], higherIsBetter: Bool = false, dropOutlierSeed: Bool = false,
                objective: @escaping (_ value: Double, _ seed: UInt64) throws -> Double) throws {
        guard !seeds.isEmpty else { throw PruneError("q search: give at least one seed") }
        self.grid = grid; self.seeds = seeds; self.higherIsBetter = higherIsBetter
        self.dropOutlierSeed = dropOutlierSeed; self.objective = objective
    }

    /// The objective at `value` over the seeds (lower is better unless `higherIsBetter`).
    public func point(_ value: Double) throws -> Point {
        var values: [Double] = []
        for seed in seeds {
            let result = try objective(value, seed)
            guard result.isFinite else {
                throw PruneError("q search: the objective at \(formatted(value, 6)) (seed \(seed)) is \(result.isNaN ? "NaN" : "\(result)"), expected a finite number")
            }
            values.append(result)
        }
        return Point(q: value, value: Self.average(values, dropOutlier: dropOutlierSeed), seedValues: values)
    }

    /// The mean of `values`, without the one farthest from the mean when asked and there are 3 or more.
    public static func average(_ values: [Double], dropOutlier: Bool) -> Double {
        let mean = values.reduce(0, +) / Double(values.count)
        guard dropOutlier, values.count >= 3 else { return mean }
        var kept = values
        let outlier = kept.indices.max { Swift.abs(kept[$0] - mean) < Swift.abs(kept[$1] - mean) }!
        kept.remove(at: outlier)
        return kept.reduce(0, +) / Double(kept.count)
    }

    /// The standard error of a point's mean over its seeds (0 with one seed).
    static func noise(_ point: Point) -> Double {
        guard let values = point.seedValues, values.count >= 2 else { return 0 }
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (variance / Double(values.count)).squareRoot()
    }

    public func run(progress: ((Point) -> Void)? = nil) throws -> Result {
        var curve: [Point] = []
        func better(_ a: Double, _ b: Double) -> Bool { higherIsBetter ? a > b : a < b }
        func clearlyWorse(_ a: Point, _ b: Point) -> Bool {
            let margin = Self.noise(a) + Self.noise(b)
            return higherIsBetter ? a.value < b.value - margin : a.value > b.value + margin
        }
        func evaluate(_ value: Double) throws -> Point {
            if let known = curve.first(where: { Swift.abs($0.q - value) <= 1e-12 * Swift.max(1, value) }) { return known }
            let point = try point(value)
            curve.append(point)
            progress?(point)
            return point
        }
        let coarse = grid.coarse
        var best = try evaluate(coarse[0]), bestIndex = 0, misses = 0
        for (index, value) in coarse.enumerated().dropFirst() {
            let point = try evaluate(value)
            if better(point.value, best.value) { best = point; bestIndex = index; misses = 0 } else if clearlyWorse(point, best) { misses += 1 }
            if misses >= 3 { break }
        }
        // The fine grid between the best coarse point's neighbours, outward on each side.
        let center = coarse[bestIndex], fine = grid.fineRatio
        for direction in [1.0, -1.0] {
            var misses = 0
            for k in 1..<grid.refinement {
                let value = center * Foundation.pow(fine, direction * Double(k))
                guard value >= grid.lower * (1 - 1e-12), value <= grid.upper * (1 + 1e-12) else { break }
                let point = try evaluate(Swift.min(grid.upper, Swift.max(grid.lower, value)))
                if better(point.value, best.value) { best = point; misses = 0 } else if clearlyWorse(point, best) { misses += 1 }
                if misses >= 3 { break }
            }
        }
        return Result(best: best, dare: nil, curve: curve.sorted { $0.q < $1.q })
    }
}
