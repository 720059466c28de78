import ArgumentParser
import Foundation
import LopperCore
import LopperIO
import LopperModels
import LopperPrune

// The option groups every verb that takes them shares: one name, one help text and one
// default per concept (`lopper prune --help` and `lopper diff --help` say the same).

/// `--base` and `--finetuned`: the pair a delta is taken between.
struct ModelPairOptions: ParsableArguments {
    @Option(help: "The pre-trained checkpoint: a folder (sharded or not, or a hub cache snapshot) or a .safetensors file.")
    var base: String
    @Option(help: "The fine-tuned checkpoint, laid out likewise.")
    var finetuned: String

    func register(in paths: inout OutputGuard) {
        paths.input("--base", base)
        paths.input("--finetuned", finetuned)
    }
}

/// `--include` and `--exclude`: which tensors are pruned (TensorSelection's one rule).
struct SelectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Also select tensors matching this glob (repeatable).", valueName: "glob"))
    var include: [String] = []
    @Option(help: ArgumentHelp("Leave out tensors matching this glob (repeatable; wins over --include; a bias follows its weight).",
                               valueName: "glob"))
    var exclude: [String] = []

    var selection: TensorSelection { TensorSelection(include: include, exclude: exclude) }
}

/// `--out` and `--overwrite`: where a verb writes and whether it may replace it.
struct OutputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Where to write (must not exist unless --overwrite; never an input).", valueName: "path"))
    var out: String?
    @Flag(help: "Replace existing outputs (--out and side outputs such as --report).")
    var overwrite = false
}

/// `--dtype` and `--shard-size`: how a written checkpoint stores its tensors.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "Dtype of written floating-point tensors (default: as read).")
    var dtype: ComputeDType?
    @Option(help: ArgumentHelp("Largest shard, e.g. 5GB, 500MB or 2GiB (default: prune keeps the fine-tuned layout, apply uses 5GB).", valueName: "size"))
    var shardSize: ByteCount?
}

/// `--data`, `--tokenizer`, `--seq-len`, `--max-sequences`: text run through a model.
struct TextOptions: ParsableArguments {
    @Option(help: "Text: .jsonl/.json with a \"text\" field per line (one sequence each; and a \"label\" for labeled metrics), or plain text cut into --seq-len chunks.")
    var data: String?
    @Option(help: "A tokenizer.json file or a folder holding one (default: the model folder's).")
    var tokenizer: String?
    @Option(help: "Tokens per sequence (JSONL records are truncated to it).")
    var seqLen: Int = 128
    @Option(help: "Use at most this many sequences (default: all).")
    var maxSequences: Int?

    func validate() throws {
        guard seqLen > 0 else { throw ValidationError("--seq-len must be at least 1, got \(seqLen)") }
        if let maxSequences, maxSequences < 1 { throw ValidationError("--max-sequences must be at least 1, got \(maxSequences)") }
    }

    /// --data, for the verbs that cannot run without it.
    func requiredData() throws -> String {
        guard let data else { throw ValidationError("--data FILE is required") }
        return data
    }

    func register(in paths: inout OutputGuard) {
        paths.input("--data", data)
        paths.input("--tokenizer", tokenizer)
    }

    /// --tokenizer, else the tokenizer.json of the first of `folders` that has one.
    func loadTokenizer(folders: [String]) throws -> Tokenizer {
        if let tokenizer { return try Tokenizer(path: tokenizer) }
        for folder in folders {
            let path = (folder as NSString).appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: path) { return try Tokenizer(path: path) }
        }
        throw ValidationError("no tokenizer.json in \(folders.joined(separator: " or ")): pass --tokenizer PATH")
    }
}

/// `--threads`: kernel threads (results do not depend on it).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Kernel threads (default: LOPPER_THREADS or the core count); the output is the same for any number.")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() { if let threads { Parallel.threads = threads } }
}

/// A floating-point dtype argument (`bf16`, `F32`, ...).
struct ComputeDType: ExpressibleByArgument {
    let dtype: DType
    init?(argument: String) {
        guard let dtype = DType(parsing: argument), dtype.isComputable else { return nil }
        self.dtype = dtype
    }
    static var allValueStrings: [String] { ["f32", "f16", "bf16", "f64"] }
}

/// A size argument: bytes, or `5GB`, `500MB`, `2GiB`.
struct ByteCount: ExpressibleByArgument {
    let bytes: Int
    init?(argument: String) {
        guard let bytes = parseByteSize(argument) else { return nil }
        self.bytes = bytes
    }
}

/// What `prune --output` writes: a model, the pruned delta, a sparse delta
/// (`Docs/sparse-format.md`) or, from a LoRA adapter, the adapter with its factors pruned.
enum OutputKind: String, ExpressibleByArgument, CaseIterable {
    case merged, delta, sparse, adapter

    /// The tensors the pipeline computes: a sparse delta is made from the merged ones.
    var deltaOutput: DeltaOutput {
        switch self {
        case .merged, .sparse: .merged
        case .delta: .delta
        case .adapter: .adapter
        }
    }
}

extension SparseOptions.Kept: ExpressibleByArgument {}

/// `--metric`, `--seeds`, `--drop-outlier-seed`, `--svg`: how a q search scores its candidates.
struct QSearchOptions: ParsableArguments {
    @Option(help: "What the search optimises: output-change (unlabeled, against the fine-tuned model), accuracy or mcc (a sequence classifier on labeled --data), perplexity (a decoder on --data).")
    var metric: SearchMetricName = .outputChange
    @Option(help: ArgumentHelp("Mask seeds the search averages over, comma-separated (prune's default: its --seed and the next two).", valueName: "list"))
    var seeds: SeedList?
    @Flag(help: "With 3 or more seeds, leave out the seed farthest from their mean (as the DAREx code does).")
    var dropOutlierSeed = false
    @Option(help: ArgumentHelp("Plot the search curve (objective over q, DARE's point marked) as SVG to this file.", valueName: "file"))
    var svg: String?
}

enum SearchMetricName: String, ExpressibleByArgument, CaseIterable {
    case outputChange = "output-change", accuracy, mcc, perplexity
}

/// A comma-separated list of mask seeds (`0,1,2`).
struct SeedList: ExpressibleByArgument {
    let seeds: [UInt64]
    init?(argument: String) {
        let parsed = argument.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, !parsed.contains(nil) else { return nil }
        seeds = parsed.compactMap { $0 }
    }
}
