import ArgumentParser
import Foundation
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune the delta between a base and a fine-tuned checkpoint with a method plugin.",
        discussion: """
        Streams tensor by tensor from mmap views and writes a Hugging Face folder (shards laid out like the \
        fine-tuned checkpoint's, or by --shard-size; index, config and tokenizer files carried through). \
        By default every 2-D linear weight and its bias are pruned; embeddings, norms and output heads keep \
        their fine-tuned values (the report says why). The seed, method and parameters go into the output's \
        __metadata__. The same seed gives byte-identical output on any number of threads.

        Parameters: --set rate=0.99, per tensor glob --set '*.mlp.*:rate=0.95', per-layer schedule \
        --set 'rate=[0.9,0.99]' (interpolated from the first to the last layer). `lopper plugin info NAME` \
        lists a method's parameters.

        LoRA: --finetuned may be a PEFT adapter folder (adapter_config.json, adapter_model.safetensors) over \
        --base: each target module's delta is scaling * B @ A, pruned as a full delta; modules_to_save are \
        fine-tuned tensors; base tensors the adapter does not touch are kept. --output adapter prunes the \
        factors A and B instead (each as its own delta, as PEFT's dare_linear does) and writes an adapter folder.

        darex_q chooses q as the DAREx paper does: with --data it searches the global q (coarse geometric \
        grid from 1-p to 1, then 10x finer around the best, masks averaged over --seeds) on --metric, \
        builds the candidates in memory and streams the output with the best q and --seed; \
        --set mode=analytical searches the analytical bound's eta instead; --set q=Q fixes q. Without \
        either it uses the closed form. The choice and the curve go into the report and the output's \
        metadata (lopper.q_choice); --svg plots the curve.

        Examples:
          lopper prune --base llama --finetuned llama-math --method dare --set rate=0.9 --out pruned
          lopper prune --base b --finetuned f --method darex_q --set rate=0.99 --set mode=analytical --out o --report r.json
          lopper prune --base b --finetuned f --method darex_q --set rate=0.999 --data val.jsonl --metric accuracy --out o
        """)

    @OptionGroup(title: "Model pair") var pair: ModelPairOptions
    @Option(help: "A method name (dare, darex_q, structural, magnitude, wanda, or any installed plugin; name@version later) or a plugin .lua file.")
    var method: String
    @Option(name: .customLong("set"), help: "A method parameter: key=value or GLOB:key=value; repeatable.")
    var settings: [String] = []
    @Option(help: "Seed of the random masks.") var seed: UInt64 = 0
    @Option(help: "merged (base + pruned delta, a model), delta (the pruned delta alone), sparse (only what `lopper apply` cannot recompute; Docs/sparse-format.md) or adapter (a LoRA --finetuned with its factors pruned, a PEFT adapter folder).")
    var output: OutputKind = .merged
    @Option(help: "With --output sparse: store the tensors the selection keeps as their fine-tuned values (finetuned) or as their changes from the base (delta).")
    var sparseKept: SparseOptions.Kept?
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Output") var outputs: OutputOptions
    @OptionGroup(title: "Checkpoint output") var checkpoint: CheckpointOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions
    @Option(help: "Calibration statistics from `lopper calibrate` (needed by wanda; darex-q uses the input means).")
    var calibration: String?
    @OptionGroup(title: "Text (darex_q's q search)") var text: TextOptions
    @OptionGroup(title: "Search") var search: QSearchOptions
    @Option(help: "Write the full report as JSON to this file (with --part, {part} in it becomes I-of-N).") var report: String?
    @Option(help: ArgumentHelp("Write only part i of n of the output's shards, into OUT.part-I-of-N, for an array job; `lopper merge-parts --out OUT` joins them (Docs/parts.md).", valueName: "i/n"))
    var part: String?
    @Flag(help: "Print the plan (what is pruned, with which parameters) and write nothing.") var dryRun = false
    @Flag(help: "Print no summary table.") var quiet = false

    func run() throws {
        try reportingErrors {
            threads.apply()
            let out = outputs.out, base = pair.base, finetuned = pair.finetuned
            let part = try self.part.map(ShardPart.init(parsing:))
            // `{part}` in --report names each part's report while the command lines stay the same.
            let report = part.map { self.report?.replacingOccurrences(of: "{part}", with: "\($0.number)-of-\($0.count)") } ?? self.report
            guard dryRun || out != nil else { throw ValidationError("--out DIR is required (or --dry-run)") }
            var paths = OutputGuard(overwrite: outputs.overwrite)
            pair.register(in: &paths)
            paths.input("--calibration", calibration)
            if method.hasSuffix(".lua") || method.contains("/") { paths.input("--method", method) }
            if !dryRun {
                paths.output("--out", part.map { $0.folder(for: out ?? "") } ?? out, .folder)
                if part != nil { try partTarget(out ?? "") }
                paths.output("--report", report, .file)
                paths.output("--svg", search.svg, .file)
            }
            text.register(in: &paths)
            try paths.check()
            var configuration = PruneConfiguration(basePath: base, finetunedPath: finetuned, outputPath: out ?? "")
            guard sparseKept == nil || output == .sparse else { throw ValidationError("--sparse-kept needs --output sparse") }
            configuration.output = output.deltaOutput
            if output == .sparse { configuration.sparse = SparseOptions(kept: sparseKept ?? .finetuned) }
            configuration.seed = seed
            configuration.overwrite = outputs.overwrite
            configuration.lopperVersion = lopperVersion
            configuration.calibrationPath = calibration
            configuration.selection = selection.selection
            configuration.settings = try settings.map(Setting.init(parsing:))
            configuration.dtype = checkpoint.dtype?.dtype
            configuration.shardSize = checkpoint.shardSize?.bytes
            configuration.commandLine = ShardPart.removing(from: CommandLine.arguments)
            configuration.part = part
            let plugin = try PluginCatalog.load(method)
            let choice = try chooseQ(plugin, &configuration)
            defer { choice?.statisticsFile?.remove() }
            let pruner = try Pruner(configuration, method: plugin)
            for skipped in pruner.finetuned.skippedFiles {
                fputs("lopper: warning: \(terminalSafe(finetuned)): skipped \(terminalSafe(skipped)): not a regular file, not carried over\n", stderr)
            }
            if dryRun {
                print(try pruner.dryRunText())
                if let text = pruner.partText { print(text) }
                return
            }
            LuaInterrupt.installHandler()
            defer { LuaInterrupt.clear() }
            let written = pruner.writtenPlan
            let prunedCount = pruner.plan.filter(\.isPruned).count  // of the whole run: a part may hold only kept tensors
            var result = try pruner.run(progress: Progress(tensors: written.count, bytes: written.reduce(0) { $0 + $1.byteCount }))
            result.qChoice = choice?.choice
            if let choice = choice?.choice { try search.writeChart(choice, title: "darex_q: \(choice.searched ?? "q") search, p = \(pruner.recordedParameters["rate"]?.description ?? "?")") }
            if let report {
                try writeFileAtomically(try result.json(), to: report)
            }
            if !quiet { print(result.summary()) }
            if prunedCount == 0 { fputs("lopper: warning: no tensor was pruned (see --include and the report)\n", stderr) }
        }
    }

    /// A part writes beside --out, which merge-parts fills later: --out itself must still
    /// be a place an output may go (not an input, not inside or holding one).
    private func partTarget(_ out: String) throws {
        var target = OutputGuard(overwrite: true)
        pair.register(in: &target)
        target.input("--calibration", calibration)
        target.output("--out", out, .folder)
        try target.check()
    }
}
