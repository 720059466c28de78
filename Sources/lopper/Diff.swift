import ArgumentParser
import LopperIO
import LopperPrune

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-layer statistics of the delta (fine-tuned - base) and a pruning method recommendation.",
        discussion: """
        Streams over the tensors a pruning method would change (2-D linear weights and their biases by \
        default; embeddings, norms and heads are left out; --include/--exclude adjust this as for prune), \
        one tensor at a time in f32. The base must hold every such tensor with the same shape.

        Columns, per transformer block (tensors outside blocks form the row `other`):
          tensors        delta tensors in the row
          params         their elements
          mean, std      mean and population std of the delta (pooled over the row)
          mean |delta|   mean absolute delta
          max |delta|    largest absolute delta
          |delta|/|W|    mean |delta| over the mean |W| of the fine-tuned weights

        Recommendation (the DAREx decision flow, Deng et al. 2024; DARE from Yu et al. 2023): \
        if the deltas are large (mean |delta| >= \(formatted(MethodRecommendation.largeRelativeDelta * 100, 0))% \
        of mean |W|, or mean |delta| >= \(MethodRecommendation.largeAbsoluteDelta)), random drops fail and \
        importance-based pruning (magnitude, wanda) is recommended; otherwise, if --rate is \
        >= \(MethodRecommendation.highRate), darex_q (rescale 1/q instead of 1/(1-p)); otherwise dare.
        """
    )

    @OptionGroup(title: "Model pair") var pair: ModelPairOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions

    @Option(help: ArgumentHelp("Also write a plot of per-layer mean |delta| and std to this SVG file.", valueName: "file"))
    var svg: String?

    @Flag(help: "Print JSON (per-tensor and per-layer figures and the recommendation) instead of a table.")
    var json = false

    @Flag(help: "Replace an existing --svg file.") var overwrite = false
    @Option(help: "The drop rate p you intend to prune with, in [0, 1); p >= 0.9 counts as high.")
    var rate = 0.9

    func run() throws {
        try reportingErrors {
            guard rate >= 0, rate < 1 else { throw DiffError("--rate must be in [0, 1), got \(rate)") }
            var paths = OutputGuard(overwrite: overwrite)
            pair.register(in: &paths)
            paths.output("--svg", svg, .file)
            try paths.check()
            let baseCheckpoint = try Checkpoint(path: pair.base)
            let finetunedCheckpoint = try Checkpoint.finetuned(path: pair.finetuned, base: baseCheckpoint)
            let statistics = try DeltaStatistics.compute(base: baseCheckpoint, finetuned: finetunedCheckpoint,
                                                         selection: selection.selection)
            let report = DiffReport(base: pair.base, finetuned: pair.finetuned, statistics: statistics, rate: rate)
            if let svg { try DeltaPlot(layers: statistics.layers).write(to: svg) }
            print(json ? try report.json() : report.text())
        }
    }
}
