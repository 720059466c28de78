import ArgumentParser
import Foundation
import LopperCore
import LopperIO
import LopperLua
import LopperModels
import LopperPrune

extension OptimizerKind: ExpressibleByArgument {}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune an encoder classifier or a decoder language model, with AdamW or AdamR (DAREx-L2).",
        discussion: """
        --task classify (BERT-family encoders): --data is JSONL, one {"text": ..., "label": ...} per line; labels \
        are names or ids. A base with a classification head keeps its labels (config.json id2label); a base \
        without one gets a head for the data's labels, initialised from --seed. --task lm (Llama, Qwen2, Mistral): \
        --data is JSONL with "text" only, or plain text cut into --seq-len chunks; next-token loss. Training is \
        F32, packed batches without padding, dropout as config.json says; batch order and dropout masks are \
        Philox streams of --seed, so a run is reproducible.

        Optimizers: adamw (torch's AdamW: W *= 1 - lr lambda, then Adam); adamr-l2 and adamr-l1 (DAREx: \
        W -= lr lambda / vbar (W - W0), or sign(W - W0), before the Adam step; vbar = sqrt of the mean \
        bias-corrected second moment over all parameters). AdamR keeps the delta from the base small, so \
        that DARE can drop 99% or more of it afterwards. --lambda defaults to 0.01 for adamw, 0.1 for AdamR; \
        --set sets it per tensor and per layer as prune's parameters: --set '*classifier*:lambda=0' (the new \
        head moves freely), --set 'lambda=[0.3,0.03]' (from the first layer to the last).

        The output is a Hugging Face folder: every tensor in the base's dtype, the base's config and \
        tokenizer files (classify: config.json with id2label/label2id), the run recorded in the safetensors metadata.

        Example:
          lopper finetune --base minilm --data train.jsonl --task classify --optimizer adamr-l2 --lambda 0.1 --out minilm-l2
          lopper prune --base minilm --finetuned minilm-l2 --method darex_l2 --set rate=0.99 --out minilm-l2-dare
        """)

    enum Task: String, ExpressibleByArgument { case classify, lm }

    @Option(help: "The pre-trained model folder (config.json, safetensors, tokenizer.json).") var base: String
    @OptionGroup(title: "Text") var text: TextOptions
    @Option(help: "What to train: classify (sequence classification, encoders) or lm (next-token prediction, decoders).") var task: Task = .classify
    @Option(help: "adamw, adamr-l2 or adamr-l1.") var optimizer: OptimizerKind = .adamrL2
    @Option(help: "Learning rate.") var lr: Double = 1e-4
    @Option(help: "Decay strength: toward 0 (adamw) or toward the base weights (AdamR).") var lambda: Double?
    @Option(name: .customLong("set"), help: "lambda=value, GLOB:lambda=value or lambda=[first,...,last] (per layer); repeatable.")
    var settings: [String] = []
    @Option(help: ArgumentHelp("AdamR with a custom pull: a Lua file returning function(delta, ctx) -> D (W -= lr lambda / vbar D).", valueName: "file.lua"))
    var pull: String?
    @Option(help: "Passes over the data.") var epochs: Int = 3
    @Option(help: "Sequences per step.") var batchSize: Int = 16
    @Option(help: "Seed of the batch order, dropout masks and a new head's weights.") var seed: UInt64 = 0
    @Option(help: "Held-out data of the same form: accuracy (classify) or perplexity (lm) after each epoch.") var evalData: String?
    @Option(help: ArgumentHelp("Write the training state (weights, moments, step) here after each epoch.", valueName: "dir"))
    var checkpoint: String?
    @Flag(help: "Continue the run whose state --checkpoint holds (same base, data and settings; --epochs may grow).")
    var resume = false
    @OptionGroup(title: "Output") var outputs: OutputOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions

    func validate() throws {
        guard lr.isFinite, lr > 0, lr < 1 else { throw ValidationError("--lr must be a number above 0 and below 1, got \(lr)") }
        if let lambda { guard lambda.isFinite, lambda >= 0, lambda <= 1e3 else { throw ValidationError("--lambda must be from 0 to 1000, got \(lambda)") } }
        guard epochs >= 1, epochs <= 100_000 else { throw ValidationError("--epochs must be from 1 to 100000, got \(epochs)") }
        guard batchSize >= 1, batchSize <= 1 << 16 else { throw ValidationError("--batch-size must be from 1 to 65536, got \(batchSize)") }
    }

    /// --data (required: `run` checks it first).
    private var dataPath: String { text.data ?? "" }

    func run() throws {
        try reportingErrors {
            threads.apply()
            _ = try text.requiredData()
            guard let out = outputs.out else { throw ValidationError("--out DIR is required") }
            var paths = OutputGuard(overwrite: outputs.overwrite)
            paths.input("--base", base)
            text.register(in: &paths)
            paths.input("--eval-data", evalData)
            paths.input("--pull", pull)
            if pull != nil, optimizer == .adamw { throw ValidationError("--pull replaces AdamR's pull toward the base: use it with --optimizer adamr-l2 or adamr-l1") }
            paths.output("--out", out, .folder)
            if let checkpoint {
                if resume {
                    guard TrainingCheckpoint.exists(in: checkpoint) else { throw ValidationError("--resume: \(checkpoint) holds no \(TrainingCheckpoint.fileName)") }
                    guard OutputGuard.resolve(checkpoint) != OutputGuard.resolve(out) else { throw ValidationError("--checkpoint and --out must differ") }
                } else {
                    paths.output("--checkpoint", checkpoint, .folder)
                }
            } else if resume {
                throw ValidationError("--resume needs --checkpoint DIR")
            }
            try paths.check()
            let config = try ModelConfig.load(folder: base)
            switch (task, config.architecture) {
            case (.classify, .llama):
                throw ValidationError("\(base) is a \(config.modelType) decoder; --task classify needs a BERT-family encoder (bert, roberta, ...)")
            case (.lm, .bert):
                throw ValidationError("\(base) is a \(config.modelType) encoder; --task lm needs a Llama-family decoder (llama, qwen2, mistral)")
            default: break
            }
            let tokenizer = try Tokenizer(path: text.tokenizer ?? base + "/tokenizer.json")
            if task == .classify { try classify(config, tokenizer, out: out) } else { try languageModel(config, tokenizer, out: out) }
        }
    }

    private func classify(_ config: ModelConfig, _ tokenizer: Tokenizer, out: String) throws {
        let length = min(text.seqLen, config.maxPositionEmbeddings - config.positionOffset)
        let data = try ClassificationData(path: dataPath, tokenizer: tokenizer, sequenceLength: length, modelLabels: try Self.headLabels(base))
        let examples = Array(data.examples.prefix(text.maxSequences ?? Int.max))
        let held = try evalData.map { try ClassificationData(path: $0, tokenizer: tokenizer, sequenceLength: length, modelLabels: data.labelNames) }
        if data.truncated > 0 { fputs("lopper: warning: \(data.truncated) record(s) longer than \(length) tokens were truncated\n", stderr) }
        let setup = try ClassifierSetup(folder: base, numLabels: data.labelNames.count, seed: seed)
        let (losses, metadata, distance) = try train(setup.model, examples, held?.examples, length: length,
                                                     about: "\(data.labelNames.count) labels") { tuner, held in
            "eval accuracy \(String(format: "%.4f", try tuner.accuracy(held)))"
        }
        try setup.write(to: out, base: base, labelNames: data.labelNames, metadata: metadata, overwrite: outputs.overwrite)
        print("wrote \(out): \(data.labelNames.count) labels, final epoch loss \(String(format: "%.4f", losses.last ?? .nan)), ||W - W0|| \(String(format: "%.6g", distance))")
    }

    private func languageModel(_ config: ModelConfig, _ tokenizer: Tokenizer, out: String) throws {
        let context = config.maxPositionEmbeddings > 0 ? config.maxPositionEmbeddings : nil
        let data = try LanguageModelData.load(path: dataPath, tokenizer: tokenizer, sequenceLength: text.seqLen, context: context)
        for warning in data.warnings { fputs("lopper: warning: \(warning)\n", stderr) }
        let examples = Array(data.examples.prefix(text.maxSequences ?? Int.max))
        let held = try evalData.map { try LanguageModelData.load(path: $0, tokenizer: tokenizer, sequenceLength: text.seqLen, context: context).examples }
        let model = try TrainableDecoder(folder: base)
        let (losses, metadata, distance) = try train(model, examples, held, length: text.seqLen, about: "next-token loss") { tuner, held in
            "eval perplexity \(String(format: "%.4f", try tuner.perplexity(held)))"
        }
        try writeTrainedModel(model.parameters, base: base, to: out, metadata: metadata, overwrite: outputs.overwrite)
        print("wrote \(out): final epoch loss \(String(format: "%.4f", losses.last ?? .nan)), ||W - W0|| \(String(format: "%.6g", distance))")
    }

    /// The training loop with progress on stderr, one line per epoch (with `evaluate` on the
    /// held-out examples); returns the epoch losses, the run's metadata and ||W - W0||.
    private func train(_ model: any TrainableModel, _ examples: [TrainingExample], _ held: [TrainingExample]?, length: Int, about: String,
                       evaluate: (FineTuner, [TrainingExample]) throws -> String) throws -> ([Double], [String: String], Double) {
        let config = model.config
        if let id = (examples + (held ?? [])).lazy.flatMap(\.ids).first(where: { $0 >= config.vocabSize }) {
            throw ValidationError("the tokenizer gives token id \(id), but \(base) has a vocabulary of \(config.vocabSize): is it this model's tokenizer?")
        }
        let lambda = self.lambda ?? (optimizer == .adamw ? 0.01 : 0.1)
        let schema = ParamSchema(method: "finetune", specs: [
            ParamSpec(name: "lambda", type: .number, defaultValue: .number(lambda), min: 0, max: 1000, doc: "decay strength"),
        ])
        let parsed = try settings.map { try Setting(parsing: $0) }
        try schema.validate(parsed)
        let layers = config.numLayers
        let adam = try AdamOptimizer(optimizer, OptimizerSettings(learningRate: lr, lambda: lambda), parameters: model.parameters,
                                     lambda: { name in
                                         try schema.resolve(parsed, name: name, layer: layerIndex(of: name), layerCount: layers)["lambda"]?.number ?? lambda
                                     })
        if let pull {
            let rule = try PullRule(path: pull)
            adam.pullRule = { name, weights, origin, step in
                try rule.direction(name: name, layer: layerIndex(of: name), step: step, weights: weights, origin: origin)
            }
        }
        let tuner = try FineTuner(model: model, optimizer: adam, seed: seed)
        let identity = [
            "base_config_sha256": try SHA256.hex(file: base + "/config.json"), "parameters": String(model.parameters.elementCount),
            "data_sha256": try SHA256.hex(file: dataPath), "task": task.rawValue, "optimizer": optimizer.rawValue, "lr": "\(lr)",
            "lambda": "\(lambda)", "set": JSON.array(settings.map { .string($0) }).text, "batch_size": String(batchSize),
            "seq_len": String(length), "seed": String(seed), "pull_sha256": try pull.map { try SHA256.hex(file: $0) } ?? "none",
        ]
        var firstEpoch = 0
        if resume, let checkpoint {
            let state = try TrainingCheckpoint(folder: checkpoint)
            try state.restore(model.parameters, adam, identity: identity, folder: checkpoint)
            firstEpoch = state.epoch
            guard firstEpoch < epochs else { throw ValidationError("\(checkpoint) is after epoch \(firstEpoch) already; pass more --epochs to continue") }
            fputs("finetune: resuming from \(checkpoint) after epoch \(firstEpoch) (step \(state.step))\n", stderr)
        }
        fputs("finetune: \(base) (\(config.modelType), \(model.parameters.elementCount) parameters), \(examples.count) examples, \(about), \(optimizer.rawValue) lr \(lr) lambda \(lambda)\n", stderr)
        let line = ProgressLine()
        var last: FineTuneProgress?
        let losses = try tuner.train(examples, epochs: epochs, batchSize: batchSize, firstEpoch: firstEpoch,
                                     progress: { last = $0; line.show($0) }) { epoch, mean in
            line.clear()
            if let checkpoint {
                try TrainingCheckpoint.write(to: checkpoint, parameters: model.parameters, optimizer: adam, epoch: epoch, identity: identity)
            }
            var report = "epoch \(epoch)/\(epochs): mean loss \(String(format: "%.4f", mean))"
            if let held { report += ", " + (try evaluate(tuner, held)) }
            fputs(report + "\n", stderr)
        }
        let run = JSON.object([
            ("task", .string(task.rawValue)), ("optimizer", .string(optimizer.rawValue)), ("lr", .number(lr, text: "\(lr)")),
            ("lambda", .number(lambda, text: "\(lambda)")), ("set", .array(settings.map { .string($0) })),
            ("pull", pull.map { .string($0) } ?? .null), ("epochs", .int(epochs)),
            ("batch_size", .int(batchSize)), ("seq_len", .int(length)), ("seed", .string(String(seed))), ("examples", .int(examples.count)),
            ("epoch_losses", .array(losses.map { .number($0, text: String(format: "%.6g", $0)) })),
        ])
        var metadata = ["lopper.version": lopperVersion, "lopper.finetune": run.text, "lopper.finetune.base": base,
                        "lopper.finetune.data_sha256": try SHA256.hex(file: dataPath),
                        "lopper.command_line": JSON.array(CommandLine.arguments.map { .string($0) }).text]
        if let pull { metadata["lopper.finetune.pull_source"] = try String(contentsOfFile: pull, encoding: .utf8) }
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        if let last { fputs("finetune: \(last.totalSteps) steps, \(Int(last.tokensPerSecond)) tokens/s (evaluation included)\n", stderr) }
        fputs("finetune: peak memory \(usage.ru_maxrss / 1024) MiB (F32 weights, gradients, two moments\(optimizer == .adamw ? "" : ", W0"), one batch's activations)\n", stderr)
        return (losses, metadata, tuner.distanceFromStart)
    }

    /// The base's head labels (config.json id2label), or nil without a head.
    static func headLabels(_ base: String) throws -> [String]? {
        let checkpoint = try Checkpoint(path: base)
        guard checkpoint.contains("classifier.weight") || checkpoint.contains("classifier.out_proj.weight") else { return nil }
        let data = try readFile(base + "/config.json")
        let json = try data.withUnsafeBytes { try JSON.parse($0) }
        let count = checkpoint.info(checkpoint.contains("classifier.weight") ? "classifier.weight" : "classifier.out_proj.weight")?.shape.first ?? 0
        if let names = ClassifierSetup.labelNames(config: json), names.count == count { return names }
        return (0..<count).map { "LABEL_\($0)" }
    }
}

/// The step line on stderr, redrawn in place on a terminal (at most ten times a second).
final class ProgressLine {
    private var last = Date.distantPast
    private let enabled = isatty(2) != 0

    func show(_ p: FineTuneProgress) {
        guard enabled, p.step == p.totalSteps || Date().timeIntervalSince(last) > 0.1 else { return }
        last = Date()
        fputs("\r\u{1B}[Kstep \(p.step)/\(p.totalSteps) epoch \(p.epoch) loss \(String(format: "%.4f", p.loss)) "
              + "\(Int(p.tokensPerSecond)) tokens/s ETA \(Int(p.secondsLeft.rounded()))s", stderr)
    }

    func clear() { if enabled { fputs("\r\u{1B}[K", stderr) } }
}
