import LopperCore

/// One tensor as a pruning method sees it.
public struct PruneJob {
    public var name: String
    /// The transformer block (`layers.12` -> 12), nil outside the blocks.
    public var layer: Int?
    /// Number of blocks in the checkpoint (for schedules and plugins).
    public var layerCount: Int
    /// `weight`, `bias` or `other`.
    public var kind: String
    public var base: Tensor
    public var finetuned: Tensor
    /// The method's parameters resolved for this tensor (defaults, `--set`, globs, schedules).
    public var parameters: [String: ParamValue]
    /// The run's seed; random streams are keyed by (seed, name).
    public var seed: UInt64
    public var output: DeltaOutput
    public var outputDType: DType
    /// Calibration statistics of this tensor's layer (`input_mean`, `input_norm`: F32
    /// per input feature), when the run has them.
    public var statistics: [String: Tensor] = [:]
    /// The run's model-wide selection, when this tensor selects at `granularity = model`.
    public var modelSelection: ModelSelection?

    public var key: RandomKey { RandomKey(seed: seed, name: name) }

    /// A job for tensor `name`; its layer and kind follow from the name.
    public init(name: String, layerCount: Int, base: Tensor, finetuned: Tensor,
                parameters: [String: ParamValue], seed: UInt64, output: DeltaOutput, outputDType: DType) {
        self.name = name; self.layer = layerIndex(of: name); self.layerCount = layerCount; self.kind = tensorKind(of: name)
        self.base = base; self.finetuned = finetuned; self.parameters = parameters
        self.seed = seed; self.output = output; self.outputDType = outputDType
    }
}

/// What a method made of one tensor.
public struct PruneOutcome {
    public enum Result {
        /// The finished tensor to write: `base + D'` or `D'` (per `job.output`) in `job.outputDType`.
        case output(Tensor)
        /// The pruned delta `D'`; the pipeline adds the base and rounds.
        case prunedDelta(Tensor)
        /// Keep the whole delta (the fine-tuned values).
        case unchanged
    }

    public var result: Result
    /// The rescale factor applied to kept entries, if the method reports one.
    public var rescale: Double?
    /// Per-tensor figures for the report (`ctx.report(key, value)` in plugins).
    public var figures: [String: Double]
    public var notes: [String]
    /// The `compareDelta` figures of an `.output` result, when the pass that made it measured them.
    public var comparison: DeltaComparison?

    public init(_ result: Result, rescale: Double? = nil, figures: [String: Double] = [:], notes: [String] = [],
                comparison: DeltaComparison? = nil) {
        self.result = result; self.rescale = rescale; self.figures = figures; self.notes = notes
        self.comparison = comparison
    }
}

/// A pruning method: a Lua plugin (LopperLua's `PluginMethod`) or a Swift one in tests.
public protocol PruneMethod: AnyObject {
    var name: String { get }
    var version: String { get }
    var schema: ParamSchema { get }
    /// Where its code came from (plugins), recorded in every output.
    var provenance: MethodProvenance? { get }
    func prune(_ job: PruneJob) throws -> PruneOutcome
    /// The importance a `score` method gives `job`'s entries (`granularity = model`).
    func scores(_ job: PruneJob) throws -> Tensor
}

extension PruneMethod {
    public var provenance: MethodProvenance? { nil }

    /// The importance of each entry (a `score` method), for the host's model-wide pass.
    public func scores(_ job: PruneJob) throws -> Tensor {
        throw PruneError("method \(name) has no score hook: granularity=model selects over the scores of a score method")
    }
}

extension PruneMethod {
    /// Prunes one tensor: the method's result finished into the tensor to write
    /// (base added, rounded to the output dtype), checked, and its report line.
    /// The pipeline and the REPL's `try` both go through here.
    public func run(_ job: PruneJob) throws -> (output: Tensor, report: TensorReport) {
        let outcome = try prune(job)
        let output = try finish(outcome.result, job: job)
        let measured: DeltaComparison? = if case .output(let tensor) = outcome.result, tensor === output { outcome.comparison } else { nil }
        let comparison = try measured
            ?? compareDelta(base: job.base, finetuned: job.finetuned, output: output, isMerged: job.output == .merged)
        if comparison.nonFiniteBefore > 0 {
            throw PruneError("tensor \"\(job.name)\": \(comparison.nonFiniteBefore) NaN or infinite values in the base or fine-tuned weights")
        }
        if comparison.nonFiniteAfter > 0 {
            throw PruneError("method \(name) produced \(comparison.nonFiniteAfter) NaN or infinite values for tensor \"\(job.name)\"")
        }
        var line = TensorReport(name: job.name, shape: job.base.shape, dtype: job.outputDType.name, action: "pruned", layer: job.layer)
        line.parameters = job.parameters
        line.keptFraction = comparison.keptFraction
        line.rescale = outcome.rescale
        line.deltaMeanBefore = comparison.meanBefore
        line.deltaStdBefore = comparison.stdBefore
        line.deltaMeanAfter = comparison.meanAfter
        line.deltaStdAfter = comparison.stdAfter
        line.relativeL2Error = comparison.relativeL2Error
        line.figures = outcome.figures
        line.notes = outcome.notes
        return (output, line)
    }

    /// The method's result as the tensor to write, checked against the job.
    private func finish(_ result: PruneOutcome.Result, job: PruneJob) throws -> Tensor {
        func checkShape(_ tensor: Tensor) throws {
            guard tensor.shape == job.base.shape else {
                throw PruneError("method \(name) returned shape \(tensor.shape.shapeText) for tensor \"\(job.name)\" of shape \(job.base.shape.shapeText)")
            }
            guard tensor.dtype.isComputable else {
                throw PruneError("method \(name) returned a \(tensor.dtype.name) tensor for \"\(job.name)\"; expected floating point")
            }
        }
        switch result {
        case .unchanged:
            return job.output == .merged
                ? (job.outputDType == job.finetuned.dtype ? job.finetuned : try job.finetuned.converted(to: job.outputDType))
                : try delta(job.finetuned, job.base, dtype: job.outputDType)
        case .output(let tensor):
            try checkShape(tensor)
            return tensor.dtype == job.outputDType ? tensor : try tensor.converted(to: job.outputDType)
        case .prunedDelta(let pruned):
            try checkShape(pruned)
            return job.output == .merged ? try add(job.base, pruned, dtype: job.outputDType) : try pruned.converted(to: job.outputDType)
        }
    }
}
