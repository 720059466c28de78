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

        Examples:
          lopper prune --base llama --finetuned llama-math --method dare --set rate=0.9 --out pruned
          lopper prune --base b --finetuned f --method darex-q --set rate=0.99 --set mode=analytical --out o --report r.json
        """)

    @Option(help: "The pre-trained checkpoint (folder or .safetensors file).") var base: String
    @Option(help: "The fine-tuned checkpoint.") var finetuned: String
    @Option(help: "A method name (dare, darex-q, structural, magnitude, or any installed plugin) or a plugin .lua file.")
    var method: String
    @Option(name: .customLong("set"), help: "A method parameter: key=value or GLOB:key=value; repeatable.")
    var settings: [String] = []
    @Option(help: "Seed of the random masks.") var seed: UInt64 = 0
    @Option(help: "The output folder (must not exist, unless --overwrite).") var out: String?
    @Option(help: "merged (base + pruned delta, a model) or delta (the pruned delta alone).") var output: String = "merged"
    @Option(help: "Output dtype of pruned and floating-point tensors: f32, f16, bf16 (default: as the fine-tuned tensor).")
    var dtype: String?
    @Option(help: "Largest shard, e.g. 2GB or 500MB (default: the fine-tuned checkpoint's shard layout).") var shardSize: String?
    @Option(help: "Also prune tensors matching this glob; repeatable.") var include: [String] = []
    @Option(help: "Never prune tensors matching this glob (wins over --include); repeatable.") var exclude: [String] = []
    @Option(help: "Calibration statistics from `lopper calibrate` (needed by wanda; darex-q uses the input means).")
    var calibration: String?
    @Option(help: "Write the full report as JSON to this file.") var report: String?
    @Option(help: "Kernel threads (default: LOPPER_THREADS or the core count).") var threads: Int?
    @Flag(help: "Print the plan (what is pruned, with which parameters) and write nothing.") var dryRun = false
    @Flag(help: "Replace an existing output folder.") var overwrite = false
    @Flag(help: "Print no summary table.") var quiet = false

    func run() throws {
        try reportingErrors {
            if let threads {
                guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
                Parallel.threads = threads
            }
            guard let outputKind = DeltaOutput(rawValue: output) else {
                throw ValidationError("--output must be merged or delta, got '\(output)'")
            }
            guard dryRun || out != nil else { throw ValidationError("--out DIR is required (or --dry-run)") }
            var paths = OutputGuard(overwrite: overwrite)
            paths.input("--base", base)
            paths.input("--finetuned", finetuned)
            paths.input("--calibration", calibration)
            if method.hasSuffix(".lua") || method.contains("/") { paths.input("--method", method) }
            if !dryRun {
                paths.output("--out", out, .folder)
                paths.output("--report", report, .file)
            }
            try paths.check()
            var configuration = PruneConfiguration(basePath: base, finetunedPath: finetuned, outputPath: out ?? "")
            configuration.output = outputKind
            configuration.seed = seed
            configuration.overwrite = overwrite
            configuration.lopperVersion = lopperVersion
            configuration.calibrationPath = calibration
            configuration.selection = TensorSelection(include: include, exclude: exclude)
            configuration.settings = try settings.map(Setting.init(parsing:))
            if let dtype {
                guard let parsed = DType(parsing: dtype), parsed.isComputable else {
                    throw ValidationError("--dtype must be f32, f16, bf16 or f64, got '\(dtype)'")
                }
                configuration.dtype = parsed
            }
            if let shardSize {
                guard let bytes = parseByteSize(shardSize) else {
                    throw ValidationError("cannot read the size '\(shardSize)' (use bytes or e.g. 5GB, 500MB, 2GiB)")
                }
                configuration.shardSize = bytes
            }
            let plugin = try PluginCatalog.load(method)
            let pruner = try Pruner(configuration, method: plugin)
            for skipped in pruner.finetuned.skippedFiles {
                fputs("lopper: warning: \(terminalSafe(finetuned)): skipped \(terminalSafe(skipped)): not a regular file, not carried over\n", stderr)
            }
            if dryRun {
                print(try pruner.dryRunText())
                return
            }
            LuaInterrupt.installHandler()
            defer { LuaInterrupt.clear() }
            let prunedCount = pruner.plan.filter(\.isPruned).count
            let result = try pruner.run(progress: Progress(tensors: pruner.plan.count, bytes: pruner.plan.reduce(0) { $0 + $1.byteCount }))
            if let report {
                try writeFileAtomically(try result.json(), to: report)
            }
            if !quiet { print(result.summary()) }
            if prunedCount == 0 { fputs("lopper: warning: no tensor was pruned (see --include and the report)\n", stderr) }
        }
    }
}
