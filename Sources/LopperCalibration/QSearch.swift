import Foundation
import LopperCore
import LopperIO
import LopperModels
import LopperPrune

/// The model side of DAREx-q's q search (`QGridSearch` walks the grid): each candidate
/// is the fine-tuned model with every selected tensor replaced by DARE's mask for a seed,
/// rescaled by 1/q, scored by its output change against the fine-tuned model on
/// calibration text, or by a custom `score` (for example a labeled validation metric
/// from Lua).
///
/// Each candidate model lives in memory (F32 weights, as the forward pass holds them):
/// meant for calibration-sized runs, not for streaming a large model.
public final class QSearch {
    public typealias Point = QGridSearch.Point
    public typealias Result = QGridSearch.Result

    public let text: CalibrationText
    private let base: Checkpoint
    private let finetuned: Checkpoint
    private let finetunedPath: String
    /// Tensors the search prunes (the selection of `lopper prune`).
    public let prunable: Set<String>
    private var reference: ModelOutput?
    private let score: ((LanguageModel) throws -> Double)?
    private var grid: QGridSearch!

    public var rate: Double { grid.rate }
    public var seeds: [UInt64] { grid.seeds }

    public init(basePath: String, finetunedPath: String, rate: Double, seeds: [UInt64], text: CalibrationText,
                selection: TensorSelection = TensorSelection(),
                score: ((LanguageModel) throws -> Double)? = nil, higherIsBetter: Bool = false) throws {
        self.text = text
        self.score = score
        self.finetunedPath = finetunedPath
        let base = try Checkpoint(path: basePath), finetuned = try Checkpoint.finetuned(path: finetunedPath, base: base)
        self.base = base
        self.finetuned = finetuned
        var prunable = Set<String>()
        for name in finetuned.names where try selection.decide(name, base: base, finetuned: finetuned).isPrune {
            prunable.insert(name)
        }
        self.prunable = prunable
        grid = try QGridSearch(rate: rate, seeds: seeds, higherIsBetter: higherIsBetter) { [unowned self] q, seed in
            try self.objective(q: q, seed: seed)
        }
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

    private func objective(q: Double, seed: UInt64) throws -> Double {
        let model = try prunedModel(q: q, seed: seed)
        if let score { return try score(model) }
        if reference == nil { reference = try loadModel(folder: finetunedPath).forward(text.sequences) }
        return try OutputChange.measure(model.forward(text.sequences), reference: reference!, architecture: model.config.architecture)
    }

    /// The objective at `q`, averaged over the seeds.
    public func value(q: Double) throws -> Double { try grid.value(q: q) }

    public func run(progress: ((Point) -> Void)? = nil) throws -> Result { try grid.run(progress: progress) }
}
