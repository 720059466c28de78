import ArgumentParser
import Foundation
import LopperIO
import LopperModels
import LopperCalibration
import LopperPrune

struct SearchQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-q",
        abstract: "Find DAREx-q's global rescale q by the output change on calibration text.",
        discussion: """
        For drop rate p, tries q from 1-p (plain DARE) upward in steps of p/10 (stopping after 3 steps \
        without improvement), then a 10x finer grid around the best; each q is scored by the output change \
        between the pruned and the fine-tuned model on the text (encoders: mean |last hidden state \
        difference|; decoders: MSE of the fine-tuned model's top-5 logits), averaged over --seeds. \
        Candidate models are built in memory (F32), so this suits models that fit in memory. Then prune with \
        the printed command (mode=fixed, q=BEST, one of the same seeds).

        Example:
          lopper search-q --base llama --finetuned llama-math --data calib.jsonl --rate 0.99
        """)

    @Option(help: "The pre-trained checkpoint folder.") var base: String
    @Option(help: "The fine-tuned model folder (config.json, safetensors, tokenizer.json).") var finetuned: String
    @Option(help: "Calibration text: .jsonl with a \"text\" field, or plain text.") var data: String
    @Option(help: "Drop rate p.") var rate: Double
    @Option(help: "Mask seeds to average over, comma-separated.") var seeds = "0,1,2"
    @Option(help: "tokenizer.json to use (default: the fine-tuned folder's).") var tokenizer: String?
    @Option(help: "Tokens per sequence.") var seqLen = 128
    @Option(help: "Use at most this many sequences.") var maxSequences = 16
    @Option(help: "Write the curve and the result as JSON to this file.") var json: String?
    @Flag(help: "Replace an existing --json file.") var overwrite = false

    func run() throws {
        try reportingErrors {
            var paths = OutputGuard(overwrite: overwrite)
            paths.input("--base", base)
            paths.input("--finetuned", finetuned)
            paths.input("--data", data)
            paths.input("--tokenizer", tokenizer)
            paths.output("--json", json, .file)
            try paths.check()
            let seedList = try seeds.split(separator: ",").map { text -> UInt64 in
                guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--seeds: '\(text)' is not a seed (use e.g. 0,1,2)")
                }
                return seed
            }
            let tokens = try Tokenizer(path: tokenizer ?? finetuned)
            let context = try ModelConfig.load(folder: finetuned).maxPositionEmbeddings
            let text = try CalibrationText(path: data, tokenizer: tokens, sequenceLength: seqLen,
                                           maxSequences: maxSequences, context: context)
            for warning in text.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
            let search = try QSearch(basePath: base, finetunedPath: finetuned, rate: rate, seeds: seedList, text: text)
            print("searching q for p = \(rate) over \(search.prunable.count) tensors, \(text.tokenCount) tokens, seeds \(seeds)")
            let result = try search.run { point in
                print("  q = \(formatted(point.q, 4))   output change \(scientific(point.value))")
            }
            print("DARE (q = \(formatted(result.dare.q, 4))): \(scientific(result.dare.value)); best q = \(formatted(result.best.q, 4)): \(scientific(result.best.value))")
            print("prune with: lopper prune --base \(base) --finetuned \(finetuned) --method darex-q --set rate=\(rate) --set mode=fixed --set q=\(formatted(result.best.q, 4)) --seed \(seedList[0]) --out OUT")
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeFileAtomically(try encoder.encode(result), to: json)
            }
        }
    }
}
