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
    @OptionGroup(title: "Text") var text: TextOptions
    @OptionGroup(title: "Output") var outputs: OutputOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions

    func run() throws {
        try reportingErrors {
            threads.apply()
            guard let out = outputs.out else { throw ValidationError("--out FILE is required") }
            var paths = OutputGuard(overwrite: outputs.overwrite)
            paths.input("--model", model)
            self.text.register(in: &paths)
            paths.output("--out", out, .file)
            try paths.check()
            let data = try self.text.requiredData()
            let tokenizer = try Tokenizer(path: self.text.tokenizer ?? model)
            let network = try loadModel(folder: model)
            let text = try CalibrationText(path: data, tokenizer: tokenizer, sequenceLength: self.text.seqLen,
                                           maxSequences: self.text.maxSequences, context: network.config.maxPositionEmbeddings)
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
