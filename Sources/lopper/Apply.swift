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

    @Option(help: "The base checkpoint (folder or .safetensors file).") var base: String
    @Option(help: "The delta checkpoint.") var delta: String
    @Option(help: "The output folder (must not exist, unless --overwrite).") var out: String
    @Option(help: "Output dtype of floating-point tensors (default: the base's).") var dtype: String?
    @Option(help: "Largest shard, e.g. 5GB or 500MB.") var shardSize = "5GB"
    @Flag(help: "Replace an existing output folder.") var overwrite = false

    func run() throws {
        try reportingErrors {
            var paths = OutputGuard(overwrite: overwrite)
            paths.input("--base", base)
            paths.input("--delta", delta)
            paths.output("--out", out, .folder)
            try paths.check()
            var applier = Applier(basePath: base, deltaPath: delta, outputPath: out)
            if let dtype {
                guard let parsed = DType(parsing: dtype), parsed.isComputable else {
                    throw ValidationError("--dtype must be f32, f16, bf16 or f64, got '\(dtype)'")
                }
                applier.dtype = parsed
            }
            guard let bytes = parseByteSize(shardSize) else { throw ValidationError("cannot read the size '\(shardSize)'") }
            applier.shardSize = bytes
            applier.overwrite = overwrite
            let counts = try applier.run(showProgress: true)
            print("wrote \(out): \(counts.added) tensors base + delta, \(counts.fromDelta) from the delta only, \(counts.copied) copied from the base")
        }
    }
}
