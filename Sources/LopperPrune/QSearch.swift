import Foundation
import LopperCore
import LopperIO
import LopperModels

/// DAREx-q's global q by search (Deng et al. 2024): the rescale 1/q, q in (1-p, 1], that
/// makes the pruned model's outputs closest to the fine-tuned model's on calibration
/// text, averaged over several mask seeds. Candidates: a coarse grid from q = 1-p (DARE)
/// in steps of p/10, stopping after 3 steps without improvement, then a 10x finer grid
/// around the best. A custom `score` (for example a labeled validation metric from Lua)
/// can replace the output change.
///
/// Each candidate model lives in memory (F32 weights, as the forward pass holds them):
/// meant for calibration-sized runs, not for streaming a large model.
public final class QSearch {
    public let rate: Double
    public let seeds: [UInt64]
    public let text: CalibrationText
    private let base: Checkpoint
    private let finetuned: Checkpoint
    private let finetunedPath: String
    /// Tensors the search prunes (the default selection of `lopper prune`).
    public let prunable: Set<String>
    private var reference: ModelOutput?
    private let score: ((LanguageModel) throws -> Double)?
    private let higherIsBetter: Bool

    public struct Point: Codable, Sendable { public var q: Double; public var value: Double }
    public struct Result: Codable, Sendable {
        public var best: Point
        /// q = 1 - p: plain DARE with the same masks.
        public var dare: Point
        public var curve: [Point]
    }

    public init(basePath: String, finetunedPath: String, rate: Double, seeds: [UInt64], text: CalibrationText,
                selection: TensorSelection = TensorSelection(),
                score: ((LanguageModel) throws -> Double)? = nil, higherIsBetter: Bool = false) throws {
        guard rate > 0, rate < 1 else { throw PruneError("q search: rate must be in (0, 1), got \(rate)") }
        guard !seeds.isEmpty else { throw PruneError("q search: give at least one seed") }
        self.rate = rate; self.seeds = seeds; self.text = text
        self.score = score; self.higherIsBetter = higherIsBetter
        self.finetunedPath = finetunedPath
        let base = try Checkpoint(path: basePath), finetuned = try Checkpoint(path: finetunedPath)
        self.base = base
        self.finetuned = finetuned
        var prunable = Set<String>()
        for name in finetuned.names {
            guard let info = finetuned.info(name), info.dtype.isComputable else { continue }
            if try pruningDecision(name, info, selection: selection, base: base, finetuned: finetuned).isPrune { prunable.insert(name) }
        }
        self.prunable = prunable
    }

    /// The fine-tuned model with every prunable tensor replaced by DARE's mask for
    /// `seed`, rescaled by 1/q.
    public func prunedModel(q: Double, seed: UInt64) throws -> LanguageModel {
        let keep = 1 - rate
        return try loadModel(folder: finetunedPath) { name in
            let tensor = try self.finetuned.tensor(name)
            guard self.prunable.contains(name) else { return tensor }
            return try fusedDare(base: try self.base.tensor(name), finetuned: tensor, keep: keep, scale: Float(1 / q),
                                 key: RandomKey(seed: seed, name: name), output: .merged, dtype: .f32)
        }
    }

    /// The objective at `q`, averaged over the seeds (lower is better unless `higherIsBetter`).
    public func value(q: Double) throws -> Double {
        var total = 0.0
        for seed in seeds {
            let model = try prunedModel(q: q, seed: seed)
            if let score {
                total += try score(model)
            } else {
                if reference == nil { reference = try loadModel(folder: finetunedPath).forward(text.sequences) }
                total += try OutputChange.measure(model.forward(text.sequences), reference: reference!, architecture: model.config.architecture)
            }
        }
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
