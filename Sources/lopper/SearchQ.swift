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

    @OptionGroup(title: "Model pair") var pair: ModelPairOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Text") var text: TextOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions
    @Option(help: "Drop rate p.") var rate: Double
    @Option(help: "Mask seeds to average over, comma-separated.") var seeds = "0,1,2"
    @Flag(help: "Print the curve and the result as JSON on stdout instead of lines.") var json = false
    @Option(help: "Also write the curve and the result as JSON to this file.") var report: String?
    @Flag(help: "Replace an existing --report file.") var overwrite = false

    func run() throws {
        try reportingErrors {
            threads.apply()
            let base = pair.base, finetuned = pair.finetuned
            var paths = OutputGuard(overwrite: overwrite)
            pair.register(in: &paths)
            self.text.register(in: &paths)
            paths.output("--report", report, .file)
            try paths.check()
            let seedList = try seeds.split(separator: ",").map { text -> UInt64 in
                guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--seeds: '\(text)' is not a seed (use e.g. 0,1,2)")
                }
                return seed
            }
            let tokens = try Tokenizer(path: self.text.tokenizer ?? finetuned)
            let context = try ModelConfig.load(folder: finetuned).maxPositionEmbeddings
            let text = try CalibrationText(path: self.text.data, tokenizer: tokens, sequenceLength: self.text.seqLen,
                                           maxSequences: self.text.maxSequences, context: context)
            for warning in text.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
            let search = try QSearch(basePath: base, finetunedPath: finetuned, rate: rate, seeds: seedList, text: text,
                                     selection: selection.selection)
            let say: (String) -> Void = { line in if !json { print(line) } }
            say("searching q for p = \(rate) over \(search.prunable.count) tensors, \(text.tokenCount) tokens, seeds \(seeds)")
            let result = try search.run { point in
                say("  q = \(formatted(point.q, 4))   output change \(scientific(point.value))")
            }
            say("DARE (q = \(formatted(result.dare.q, 4))): \(scientific(result.dare.value)); best q = \(formatted(result.best.q, 4)): \(scientific(result.best.value))")
            say("prune with: lopper prune --base \(base) --finetuned \(finetuned) --method darex_q --set rate=\(rate) --set mode=fixed --set q=\(formatted(result.best.q, 4)) --seed \(seedList[0]) --out OUT")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let encoded = try encoder.encode(result)
            if json { print(String(decoding: encoded, as: UTF8.self)) }
            if let report { try writeFileAtomically(encoded, to: report) }
        }
    }
}
