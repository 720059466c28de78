import Foundation
import LopperCore
import LopperIO

/// A base model made ready for sequence classification: the trainable encoder, and whether
/// its head (and pooler) had to be created.
public struct ClassifierSetup {
    public let model: TrainableEncoder
    /// Names of the tensors created here (not in the base checkpoint).
    public let createdTensors: [String]
    /// The base's config.json, parsed.
    public let configJSON: JSON

    /// Loads `folder` for `labels` labels. A base without a classification head gets BERT's
    /// (pooler if missing, then `classifier`), weights drawn N(0, initializer_range) from
    /// Philox keyed by (seed, tensor name), biases 0, as transformers initialises them.
    public init(folder: String, numLabels: Int, seed: UInt64) throws {
        let config = try ModelConfig.load(folder: folder)
        guard config.architecture == .bert else {
            throw ModelError.badConfig("\(folder) is a \(config.modelType) decoder; --task classify needs a BERT-family encoder (bert, roberta, ...)")
        }
        try config.checkFitsInMemory(source: folder + "/config.json")
        let json = try data(folder + "/config.json")
        configJSON = json
        let checkpoint = try Checkpoint(path: folder)
        let prefix = ["bert.", "roberta.", ""].first { checkpoint.contains($0 + "embeddings.word_embeddings.weight") } ?? "bert."
        let h = config.hiddenSize
        var created: [String: Tensor] = [:]
        let std: Float = { if case .number(let v, _)? = json["initializer_range"], v > 0, v < 10 { return Float(v) }; return 0.02 }()
        func normal(_ name: String, _ shape: [Int]) throws -> Tensor {
            let count = shape.reduce(1, *), u = try uniform([2 * count], key: RandomKey(seed: seed, name: "init/" + name)).floats()
            // Box-Muller on pairs of uniforms; 1 - u keeps the logarithm finite.
            let values = (0..<count).map { i in
                std * (-2 * Foundation.log(1 - u[2 * i])).squareRoot() * Foundation.cos(2 * Float.pi * u[2 * i + 1])
            }
            return Tensor(values, shape: shape)
        }
        let hasHead = checkpoint.contains("classifier.weight") || checkpoint.contains("classifier.out_proj.weight")
        if hasHead {
            let head = checkpoint.info(checkpoint.contains("classifier.weight") ? "classifier.weight" : "classifier.out_proj.weight")!
            guard head.shape.first == numLabels else {
                throw ModelError.badInput("\(folder) has a classification head of \(head.shape.first ?? 0) labels; the data needs \(numLabels)")
            }
        } else if config.modelType != "bert" {
            // RoBERTa-family classes read out_proj(tanh(dense(h[CLS]))), not a pooler
            created["classifier.dense.weight"] = try normal("classifier.dense.weight", [h, h])
            created["classifier.dense.bias"] = try Tensor(zeros: [h])
            created["classifier.out_proj.weight"] = try normal("classifier.out_proj.weight", [numLabels, h])
            created["classifier.out_proj.bias"] = try Tensor(zeros: [numLabels])
        } else {
            if !checkpoint.contains(prefix + "pooler.dense.weight") {
                created[prefix + "pooler.dense.weight"] = try normal(prefix + "pooler.dense.weight", [h, h])
                created[prefix + "pooler.dense.bias"] = try Tensor(zeros: [h])
            }
            created["classifier.weight"] = try normal("classifier.weight", [numLabels, h])
            created["classifier.bias"] = try Tensor(zeros: [numLabels])
        }
        model = try TrainableEncoder(config: config, numLabels: numLabels,
                                     tensor: { name in try created[name] ?? checkpoint.tensor(name) },
                                     has: { created[$0] != nil || checkpoint.contains($0) })
        func rate(_ key: String) -> Double? {
            if case .number(let v, _)? = json[key], v >= 0, v < 1 { return v }
            return nil
        }
        model.hiddenDropout = rate("hidden_dropout_prob") ?? 0.1
        model.attentionDropout = rate("attention_probs_dropout_prob") ?? 0.1
        model.classifierDropout = rate("classifier_dropout") ?? model.hiddenDropout
        createdTensors = created.keys.sorted()
    }

    /// id2label of config.json in id order, when it names every id of a head.
    public static func labelNames(config json: JSON) -> [String]? {
        guard case .object(let members)? = json["id2label"] else { return nil }
        var names: [Int: String] = [:]
        for (key, value) in members {
            guard let id = Int(key), case .string(let name) = value else { return nil }
            names[id] = name
        }
        guard !names.isEmpty, names.keys.sorted() == Array(0..<names.count) else { return nil }
        return (0..<names.count).map { names[$0]! }
    }
}

private func data(_ path: String) throws -> JSON {
    let bytes: Data
    do { bytes = try readFile(path) } catch { throw ModelError.badConfig("\(error)") }
    do { return try bytes.withUnsafeBytes { try JSON.parse($0) } } catch { throw ModelError.badConfig("\(path): \(error)") }
}
