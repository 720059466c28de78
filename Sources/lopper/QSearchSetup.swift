import ArgumentParser
import Foundation
import LopperCalibration
import LopperIO
import LopperModels
import LopperPrune

/// Builds what `search-q` and `prune --data` search on: the objective from --metric and the
/// text options, read with the fine-tuned model's tokenizer (or the base's, or --tokenizer).
extension QSearchOptions {
    func objective(_ text: TextOptions, base: String, finetuned: String) throws -> SearchObjective {
        let data = try text.requiredData()
        let tokenizer = try text.loadTokenizer(folders: [finetuned, base])
        let configFolder = FileManager.default.fileExists(atPath: (finetuned as NSString).appendingPathComponent("config.json")) ? finetuned : base
        let context = try ModelConfig.load(folder: configFolder).maxPositionEmbeddings
        switch metric {
        case .accuracy, .mcc:
            let records = try LabeledText(path: data, tokenizer: tokenizer, sequenceLength: text.seqLen,
                                          maxSequences: text.maxSequences, context: context)
            return .labeled(records, metric == .accuracy ? .accuracy : .mcc)
        case .outputChange, .perplexity:
            let calibration = try CalibrationText(path: data, tokenizer: tokenizer, sequenceLength: text.seqLen,
                                                  maxSequences: text.maxSequences, context: context)
            for warning in calibration.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
            return metric == .perplexity ? .perplexity(calibration) : .outputChange(calibration)
        }
    }

    func seedList(defaultSeeds: [UInt64]) -> [UInt64] { seeds?.seeds ?? defaultSeeds }

    func writeChart(_ choice: QChoice, title: String) throws {
        guard let svg else { return }
        guard let chart = choice.chart(title: title) else {
            throw ValidationError("--svg plots a search curve, but q was not searched (\(choice.how)): give --data")
        }
        try chart.write(to: svg)
    }
}
