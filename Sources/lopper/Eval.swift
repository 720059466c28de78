import ArgumentParser
import Foundation
import LopperCalibration
import LopperCore
import LopperModels

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on text: perplexity (decoders) and the output change against a reference model.",
        discussion: """
        Runs Lopper's own forward pass (Llama, Qwen2, Mistral decoders; BERT, RoBERTa encoders) on the \
        text of --data: a .jsonl/.json file with one {"text": ...} record per line (one sequence each, \
        special tokens added, cut at --seq-len) or any other file as plain text, cut into chunks of \
        --seq-len tokens. Every sequence runs on its own (no padding).

        Decoders: prints the perplexity (exp of the mean next-token negative log-likelihood) and the \
        number of tokens predicted. With --reference: the output change of --model against the reference \
        on the same text, as DAREx measures it (decoders: MSE of the logits at the reference's top-5 tokens \
        of every position; encoders: mean |difference| of the last hidden states). Use it to compare a \
        pruned model with its fine-tuned model.

        Examples:
          lopper eval --model llama-math --data wiki.txt --max-sequences 64
          lopper eval --model pruned --reference llama-math --data calib.jsonl
        """)

    @Option(help: "The model folder (config.json and safetensors).") var model: String
    @Option(help: "A reference model folder: also print the output change of --model against it.") var reference: String?
    @OptionGroup(title: "Text") var text: TextOptions
    @Option(help: "Also score a sequence classifier on labeled --data ({\"text\", \"label\"} records): accuracy or mcc.")
    var metric: SearchMetricName?
    @OptionGroup(title: "Threads") var threads: ThreadOptions

    func run() throws {
        try reportingErrors {
            threads.apply()
            let data = try self.text.requiredData()
            let config = try ModelConfig.load(folder: model)
            try config.checkFitsInMemory(source: model + "/config.json")
            let referenceConfig = try reference.map { try ModelConfig.load(folder: $0) }
            if let referenceConfig, let reference {
                guard referenceConfig.architecture == config.architecture, referenceConfig.vocabSize == config.vocabSize,
                      referenceConfig.hiddenSize == config.hiddenSize else {
                    throw ValidationError("--reference \(reference) (\(referenceConfig.modelType), hidden \(referenceConfig.hiddenSize), vocab \(referenceConfig.vocabSize)) does not match --model \(model) (\(config.modelType), hidden \(config.hiddenSize), vocab \(config.vocabSize))")
                }
            }
            if let metric {
                guard metric == .accuracy || metric == .mcc else {
                    throw ValidationError("--metric takes accuracy or mcc here (eval prints perplexity and, with --reference, the output change by itself)")
                }
                let tokenizer = try self.text.loadTokenizer(folders: [model])
                let records = try LabeledText(path: data, tokenizer: tokenizer, sequenceLength: self.text.seqLen,
                                              maxSequences: self.text.maxSequences, context: config.maxPositionEmbeddings)
                let value = try (metric == .accuracy ? LabeledMetric.accuracy : .mcc)
                    .evaluate(try loadModel(folder: model), on: records, labelNames: LabeledText.labelNames(configFolder: model), modelName: model)
                print("\(metric.rawValue): \(String(format: "%.4f", value)) (\(records.sequences.count) records of \(data))")
                return
            }
            guard config.architecture == .llama || reference != nil else {
                throw ValidationError("\(model) is an encoder (\(config.modelType)): perplexity needs a decoder; pass --reference DIR to measure the output change")
            }
            let tokenizer = try self.text.loadTokenizer(folders: [model] + (reference.map { [$0] } ?? []))
            let text = try CalibrationText(path: data, tokenizer: tokenizer, sequenceLength: self.text.seqLen,
                                           maxSequences: self.text.maxSequences, context: config.maxPositionEmbeddings)
            for warning in text.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
            if let id = text.sequences.lazy.flatMap({ $0 }).first(where: { $0 >= config.vocabSize }) {
                throw ValidationError("the tokenizer gives token id \(id), but \(model) has a vocabulary of \(config.vocabSize): is it this model's tokenizer?")
            }
            let candidate = try loadModel(folder: model)
            print("model: \(model) (\(config.modelType) \(config.architecture == .llama ? "decoder" : "encoder"), \(config.numLayers) layers)")
            print("data: \(data): \(text.sequences.count) sequence\(text.sequences.count == 1 ? "" : "s"), \(text.tokenCount) tokens")
            if config.architecture == .llama {
                let predicted = text.sequences.reduce(0) { $0 + max(0, $1.count - 1) }
                let value = try perplexity(candidate, on: text)
                print("perplexity: \(String(format: "%.4f", value)) (\(predicted) tokens predicted)")
            }
            if let reference {
                let referenceModel = try loadModel(folder: reference)
                let change = try OutputChange.between(candidate, referenceModel, on: text)
                let metric = config.architecture == .llama ? "top-5 logit MSE" : "mean |hidden difference|"
                print("output change vs \(reference): \(String(format: "%.6g", change)) (\(metric))")
            }
        }
    }
}
