import Foundation

/// DAREx-q's global q by search (Deng et al. 2024): the rescale 1/q, q in (1-p, 1], that
/// optimises an objective (the output change on calibration text, or a labeled metric),
/// averaged over several mask seeds. Candidates: a coarse grid from q = 1-p (DARE) in
/// steps of p/10, stopping after 3 steps without improvement, then a 10x finer grid
/// around the best. The objective comes from above (LopperCalibration evaluates models);
/// this type only walks the grid.
public struct QGridSearch {
    public let rate: Double
    public let seeds: [UInt64]
    public let higherIsBetter: Bool
    /// The objective of one candidate: q and a mask seed.
    private let objective: (_ q: Double, _ seed: UInt64) throws -> Double

    public struct Point: Codable, Sendable { public var q: Double; public var value: Double }
    public struct Result: Codable, Sendable {
        public var best: Point
        /// q = 1 - p: plain DARE with the same masks.
        public var dare: Point
        public var curve: [Point]
    }

    public init(rate: Double, seeds: [UInt64], higherIsBetter: Bool = false,
                objective: @escaping (_ q: Double, _ seed: UInt64) throws -> Double) throws {
        guard rate > 0, rate < 1 else { throw PruneError("q search: rate must be in (0, 1), got \(rate)") }
        guard !seeds.isEmpty else { throw PruneError("q search: give at least one seed") }
        self.rate = rate; self.seeds = seeds; self.higherIsBetter = higherIsBetter; self.objective = objective
    }

    /// The objective at `q`, averaged over the seeds (lower is better unless `higherIsBetter`).
    public func value(q: Double) throws -> Double {
        var total = 0.0
        for seed in seeds { total += try objective(q, seed) }
        return total / Double(seeds.count)
    }

    public func run(progress: ((Point) -> Void)? = nil) throws -> Result {
        var curve: [Point] = []
        func better(_ a: Double, _ b: Double) -> Bool { higherIsBetter ? a > b : a < b }
        func evaluate(_ q: Double) throws -> Point {
            if let known = curve.first(where: { Swift.abs($0.q - q) < 1e-12 }) { return known }
            let point = Point(q: q, value: try value(q: q))
            curve.append(point)
            progress?(point)
            return point
        }
        let low = 1 - rate, step = rate / 10
        let dare = try evaluate(low)
        var best = dare
        var misses = 0
        for k in 1...10 {
            let point = try evaluate(Swift.min(1, low + Double(k) * step))
            if better(point.value, best.value) { best = point; misses = 0 } else { misses += 1 }
            if misses >= 3 { break }
        }
        let fine = step / 10
        for k in -9...9 where k != 0 {
            let q = best.q + Double(k) * fine
            guard q >= low - 1e-12, q <= 1 + 1e-12 else { continue }
            let point = try evaluate(Swift.min(1, Swift.max(low, q)))
            if better(point.value, best.value) { best = point }
        }
        return Result(best: best, dare: dare, curve: curve.sorted { $0.q < $1.q })
    }
}
