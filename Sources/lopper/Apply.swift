import ArgumentParser
import LopperCore
import LopperIO
import LopperPrune

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a pruned delta (from `lopper prune --output delta`) back onto a base checkpoint.",
        discussion: """
        Streams tensor by tensor: out = base + delta for tensors in both, the delta's values for tensors \
        the base lacks, the base's for tensors the delta lacks. The output is a Hugging Face folder with \
        the base's config and tokenizer files and the delta's run metadata.

        Example:
          lopper prune --base llama --finetuned llama-math --method dare --output delta --out math-delta
          lopper apply --base llama --delta math-delta --out llama-math-dare
        """)

    @Option(help: "The base checkpoint: a folder (sharded or not, or a hub cache snapshot) or a .safetensors file.") var base: String
    @Option(help: "The delta checkpoint (`lopper prune --output delta`).") var delta: String
    @OptionGroup(title: "Output") var outputs: OutputOptions
    @OptionGroup(title: "Checkpoint output") var checkpoint: CheckpointOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions

    func run() throws {
        try reportingErrors {
            threads.apply()
            guard let out = outputs.out else { throw ValidationError("--out DIR is required") }
            var paths = OutputGuard(overwrite: outputs.overwrite)
            paths.input("--base", base)
            paths.input("--delta", delta)
            paths.output("--out", out, .folder)
            try paths.check()
            var applier = Applier(basePath: base, deltaPath: delta, outputPath: out)
            applier.dtype = checkpoint.dtype?.dtype
            if let size = checkpoint.shardSize { applier.shardSize = size.bytes }
            applier.overwrite = outputs.overwrite
            let counts = try applier.run(showProgress: true)
            print("wrote \(out): \(counts.added) tensors base + delta, \(counts.fromDelta) from the delta only, \(counts.copied) copied from the base")
        }
    }
}
