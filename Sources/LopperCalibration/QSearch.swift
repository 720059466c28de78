import Foundation
import LopperCore
import LopperIO
import LopperModels
import LopperPrune

/// The model side of DAREx-q's searches (`QGridSearch` walks the grid): each candidate is the
/// fine-tuned model with every selected tensor replaced by DARE's mask for a seed, rescaled by
/// 1/q (one q for all tensors, or one per tensor for the analytical mode), scored by a
/// `SearchObjective` against the fine-tuned model. The masks are the ones `lopper prune` draws
/// with the same seed (Philox keyed by seed and tensor name), so the chosen candidate is exactly
/// what the streamed output holds.
///
/// Each candidate model lives in memory (F32 weights, as the forward pass holds them):
/// meant for calibration-sized runs, not for streaming a large model. Nothing assumes a full
/// fine-tune: tensors whose delta is zero (a LoRA-style or partial fine-tune) stay as they are.
public final class QSearch {
    public typealias Point = QGridSearch.Point
    public typealias Result = QGridSearch.Result

    public let rate: Double
    public let seeds: [UInt64]
    public let objective: SearchObjective
    public let dropOutlierSeed: Bool
    let base: Checkpoint
    let finetuned: Checkpoint
    /// Where config.json comes from: the fine-tuned folder, else the base's (an adapter-only folder).
    let configFolder: String
    /// Tensors the search prunes (the selection of `lopper prune`), in checkpoint order.
    public let prunable: [String]
    private var reference: ModelOutput?
    /// Class indices of labeled records, resolved against the head once.
    private var truth: [Int]?
    private var classes = 0

    public init(basePath: String, finetunedPath: String, rate: Double, seeds: [UInt64], objective: SearchObjective,
                selection: TensorSelection = TensorSelection(), dropOutlierSeed: Bool = false) throws {
        guard rate > 0, rate < 1 else { throw PruneError("q search: rate must be in (0, 1), got \(rate)") }
        guard !seeds.isEmpty else { throw PruneError("q search: give at least one seed") }
        self.rate = rate; self.seeds = seeds; self.objective = objective; self.dropOutlierSeed = dropOutlierSeed
        let base = try Checkpoint(path: basePath), finetuned = try Checkpoint.finetuned(path: finetunedPath, base: base)
        self.base = base
        self.finetuned = finetuned
        configFolder = FileManager.default.fileExists(atPath: (finetunedPath as NSString).appendingPathComponent("config.json"))
            ? finetunedPath : basePath
        prunable = try finetuned.names.filter { try selection.decide($0, base: base, finetuned: finetuned).isPrune }
        try prepare(finetunedPath: finetunedPath)
    }

    /// Checks the objective fits the model before any candidate is built.
    private func prepare(finetunedPath: String) throws {
        switch objective {
        case .labeled(let records, _):
            classes = try classPredictions(try finetunedModel(), [records.sequences[0]], modelName: finetunedPath).count
            truth = try records.classIndices(classes: classes, names: LabeledText.labelNames(configFolder: configFolder), model: finetunedPath)
        case .perplexity:
            let config = try ModelConfig.load(folder: configFolder)
            guard config.architecture == .llama else {
                throw ModelError.badInput("perplexity needs a decoder; \(finetunedPath) is an encoder (\(config.modelType)): use output-change or a labeled metric")
            }
        case .outputChange, .custom: break
        }
    }

    func finetunedModel() throws -> LanguageModel {
        try loadModel(folder: configFolder) { try self.finetuned.tensor($0) }
    }

    /// The fine-tuned model with every prunable tensor replaced by DARE's mask for `seed`,
    /// rescaled by 1/q(name).
    public func prunedModel(q: @escaping (String) -> Double, seed: UInt64) throws -> LanguageModel {
        let keep = 1 - rate, prunable = Set(self.prunable)
        return try loadModel(folder: configFolder) { name in
            let tensor = try self.finetuned.tensor(name)
            guard prunable.contains(name) else { return tensor }
            return try fusedDare(base: try self.base.tensor(name), finetuned: tensor, keep: keep, scale: Float(1 / q(name)),
                                 key: RandomKey(seed: seed, name: name), output: .merged, dtype: .f32)
        }
    }

    public func prunedModel(q: Double, seed: UInt64) throws -> LanguageModel { try prunedModel(q: { _ in q }, seed: seed) }

    /// The objective of a model.
    public func score(_ model: LanguageModel) throws -> Double {
        let value: Double
        switch objective {
        case .outputChange(let text):
            if reference == nil { reference = try finetunedModel().forward(text.sequences) }
            value = try OutputChange.measure(model.forward(text.sequences), reference: reference!, architecture: model.config.architecture)
        case .perplexity(let text): value = try perplexity(model, on: text)
        case .labeled(let records, let metric):
            value = metric.value(predicted: try classPredictions(model, records.sequences, modelName: "the candidate").classes,
                                 truth: truth!, classes: classes)
        case .custom(_, _, let score): value = try score(model)
        }
        guard value.isFinite else {
            throw PruneError("q search: \(objective.name) is \(value.isNaN ? "NaN" : "\(value)"), expected a finite number")
        }
        return value
    }

    /// The objective of the fine-tuned model itself (0 for the output change).
    public func finetunedScore() throws -> Double { try score(try finetunedModel()) }

    func walker(_ grid: QGridSearch.Grid, objective: @escaping (Double, UInt64) throws -> Double) throws -> QGridSearch {
        try QGridSearch(grid: grid, seeds: seeds, higherIsBetter: self.objective.higherIsBetter,
                        dropOutlierSeed: dropOutlierSeed, objective: objective)
    }

    /// DARE's point (q = 1-p) over the seeds.
    public func darePoint() throws -> Point {
        try walker(try QGridSearch.Grid.q(rate: rate)) { q, seed in try self.score(self.prunedModel(q: q, seed: seed)) }.point(1 - rate)
    }

    /// The objective at a global `q`, averaged over the seeds.
    public func value(q: Double) throws -> Double {
        try walker(try QGridSearch.Grid.q(rate: rate)) { q, seed in try self.score(self.prunedModel(q: q, seed: seed)) }.point(q).value
    }

    /// The global q search (`grid` defaults to 1-p ... 1); the result holds DARE's point.
    public func run(grid: QGridSearch.Grid? = nil, progress: ((Point) -> Void)? = nil) throws -> Result {
        let grid = try grid ?? QGridSearch.Grid.q(rate: rate)
        let search = try walker(grid) { q, seed in try self.score(self.prunedModel(q: q, seed: seed)) }
        var result = try search.run(progress: progress)
        result.dare = try result.curve.first { Swift.abs($0.q - (1 - rate)) < 1e-12 } ?? darePoint()
        return result
    }

    /// The analytical mode's eta search: each eta gives per-tensor q's (`qs`), scored like a q.
    public func runEta(grid: QGridSearch.Grid, qs: @escaping (Double) -> [String: Double],
                       progress: ((Point) -> Void)? = nil) throws -> Result {
        let search = try walker(grid) { eta, seed in
            let table = qs(eta)
            return try self.score(self.prunedModel(q: { table[$0] ?? 1 }, seed: seed))
        }
        var result = try search.run(progress: progress)
        result.dare = try darePoint()
        return result
    }

    /// The per-tensor analytical q's from these checkpoints and input means.
    public func analytical(inputMean: ((String) throws -> Tensor?)?) throws -> AnalyticalQ {
        try AnalyticalQ(base: base, finetuned: finetuned, prunable: prunable, rate: { _ in self.rate }, inputMean: inputMean)
    }

    /// Input means of every linear layer of the fine-tuned model over `text` (what `lopper calibrate` records).
    public func inputStatistics(_ text: CalibrationText) throws -> InputStatistics {
        try calibrate(try finetunedModel(), on: text)
    }
}
