import ArgumentParser
import Foundation
import LopperIO
import LopperModels

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run text through a model once and record the inputs of every linear layer.",
        discussion: """
        Writes a statistics file (safetensors) with, for every linear layer NAME.weight, the mean \
        (NAME.weight.input_mean) and the L2 norm over all tokens (NAME.weight.input_norm) of each input \
        feature. `lopper prune --calibration STATS` hands them to methods: wanda scores |delta| * ||x||, \
        darex-q uses the input means. Text: a .jsonl file (one {"text": ...} per line, one sequence each, \
        truncated to --seq-len with a warning) or plain text cut into chunks of --seq-len tokens.

        Example:
          lopper calibrate --model llama-base --data calib.jsonl --out calib.stats.safetensors
        """)

    @Option(help: "The model folder (config.json, safetensors, tokenizer.json).") var model: String
    @Option(help: "Calibration text: .jsonl with a \"text\" field, or plain text.") var data: String
    @Option(help: "Where to write the statistics (.safetensors).") var out: String
    @Option(help: "tokenizer.json to use (default: the model folder's).") var tokenizer: String?
    @Option(help: "Tokens per sequence.") var seqLen = 128
    @Option(help: "Use at most this many sequences.") var maxSequences: Int?
    @Flag(help: "Replace an existing --out file.") var overwrite = false

    func run() throws {
        try reportingErrors {
            var paths = OutputGuard(overwrite: overwrite)
            paths.input("--model", model)
            paths.input("--data", data)
            paths.input("--tokenizer", tokenizer)
            paths.output("--out", out, .file)
            try paths.check()
            let tokenizer = try Tokenizer(path: self.tokenizer ?? model)
            let network = try loadModel(folder: model)
            let text = try CalibrationText(path: data, tokenizer: tokenizer, sequenceLength: seqLen,
                                           maxSequences: maxSequences, context: network.config.maxPositionEmbeddings)
            for warning in text.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
            let terminal = isatty(2) != 0
            let statistics = try calibrate(network, on: text) { done, total in
                if terminal { fputs("\r\u{1B}[Kcalibrating: \(done)/\(total) sequences", stderr) }
            }
            if terminal { fputs("\r\u{1B}[K", stderr) }
            try statistics.write(to: out, metadata: ["lopper.model": model, "lopper.data": data,
                                                     "lopper.sequences": String(text.sequences.count)])
            print("wrote \(out): \(statistics.layers.count) linear layers, \(text.tokenCount) tokens in \(text.sequences.count) sequences")
        }
    }
}
