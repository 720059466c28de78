import Foundation
import LopperCore
import LopperIO
import LopperModels

/// A small BERT sequence classifier pair, built here: a random "pre-trained" encoder and a
/// "fine-tuned" one whose every encoder weight and bias moved by a fine-tune-like delta (mostly low
/// rank, plus dense noise and a small shift), with a new two-class head. The task is a
/// word-sequence polarity that the fine-tuned model defines: its argmax on random sentences of
/// real vocabulary words, kept where it is confident, split into validation (`val.jsonl`) and
/// held-out (`test.jsonl`) records with string labels from `id2label`. The base's features with the
/// fine-tuned head agree with it only in part, so the delta carries the task, as in a real fine-tune.
/// `unlabeled.jsonl` is text only; `bare/` is the fine-tuned checkpoint without tokenizer or head.
struct EncoderPairFixture {
    let folder: String
    var base: String { folder + "/base" }
    var finetuned: String { folder + "/finetuned" }
    var validation: String { folder + "/val.jsonl" }
    var heldOut: String { folder + "/test.jsonl" }
    var unlabeled: String { folder + "/unlabeled.jsonl" }
    var headless: String { folder + "/headless" }

    static let hidden = 64, intermediate = 128, layers = 2

    /// `loraModules`: only weights whose names contain one of these move, by a rank-2 delta
    /// (a LoRA-style fine-tune: every other delta is exactly zero).
    init(deltaScale: Float = 0.03, records: Int = 600, loraModules: [String]? = nil, folder: String? = nil) throws {
        self.folder = folder ?? (NSTemporaryDirectory() + "lopper-encoder-\(UUID().uuidString)")
        let tokenizerPath = ModelPairFixture.fixtures.appendingPathComponent("tokenizers/bert_uncased/tokenizer.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: tokenizerPath)) as? [String: Any]
        let vocabulary = ((json?["model"] as? [String: Any])?["vocab"] as? [String: Int]) ?? [:]
        let vocab = (vocabulary.values.max() ?? 0) + 1
        let h = Self.hidden
        let config = """
        {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_size": \(h),
         "num_hidden_layers": \(Self.layers), "num_attention_heads": 4, "intermediate_size": \(Self.intermediate),
         "vocab_size": \(vocab), "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
         "hidden_act": "gelu", "pad_token_id": 0,
         "id2label": {"0": "negative", "1": "positive"}, "label2id": {"negative": 0, "positive": 1}}
        """
        var shapes: [(String, [Int])] = [("bert.embeddings.word_embeddings.weight", [vocab, h]),
                                         ("bert.embeddings.position_embeddings.weight", [64, h]),
                                         ("bert.embeddings.token_type_embeddings.weight", [2, h]),
                                         ("bert.embeddings.LayerNorm.weight", [h]), ("bert.embeddings.LayerNorm.bias", [h])]
        for layer in 0..<Self.layers {
            let p = "bert.encoder.layer.\(layer)."
            for (name, out, inputs) in [("attention.self.query", h, h), ("attention.self.key", h, h), ("attention.self.value", h, h),
                                        ("attention.output.dense", h, h), ("intermediate.dense", Self.intermediate, h),
                                        ("output.dense", h, Self.intermediate)] {
                shapes += [(p + name + ".weight", [out, inputs]), (p + name + ".bias", [out])]
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] { shapes += [(p + norm + ".weight", [h]), (p + norm + ".bias", [h])] }
        }
        shapes += [("bert.pooler.dense.weight", [h, h]), ("bert.pooler.dense.bias", [h]), ("classifier.weight", [2, h]), ("classifier.bias", [2])]
        func random(_ shape: [Int], _ seed: UInt64, _ name: String, scale: Float) throws -> Tensor {
            try LopperCore.scale(try add(try uniform(shape, key: RandomKey(seed: seed, name: name)), -0.5), 2 * scale)
        }
        for (which, isFinetuned) in [("base", false), ("finetuned", true)] {
            var tensors: [(String, Tensor)] = []
            for (name, shape) in shapes {
                var tensor: Tensor
                if name.contains("LayerNorm.weight") {
                    tensor = Tensor([Float](repeating: 1, count: shape[0]))
                } else if name.hasPrefix("classifier") {
                    tensor = try random(shape, isFinetuned ? 8 : 7, name, scale: 0.5)
                } else {
                    tensor = try random(shape, 5, name, scale: shape.count == 1 ? 0.05 : 0.12)
                }
                if isFinetuned, name.contains("encoder.layer"), !name.contains("LayerNorm") {
                    if let loraModules {
                        if shape.count == 2, loraModules.contains(where: name.contains) {
                            tensor = try add(tensor, try Self.delta(shape, name: name, scale: deltaScale, dense: false))
                        }
                    } else {
                        tensor = try add(tensor, try Self.delta(shape, name: name, scale: deltaScale))
                    }
                }
                tensors.append((name, tensor))
            }
            let out = self.folder + "/" + which
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try saveSafetensors(tensors, to: out + "/model.safetensors")
            try config.write(toFile: out + "/config.json", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: tokenizerPath.path, toPath: out + "/tokenizer.json")
            if isFinetuned {
                try FileManager.default.createDirectory(atPath: headless, withIntermediateDirectories: true)
                try saveSafetensors(tensors.filter { !$0.0.hasPrefix("classifier") }, to: headless + "/model.safetensors")
                try config.replacingOccurrences(of: "BertForSequenceClassification", with: "BertModel")
                    .write(toFile: headless + "/config.json", atomically: true, encoding: .utf8)
            }
        }
        try writeRecords(words: vocabulary.keys.filter { $0.count >= 3 && $0.allSatisfy(\.isLetter) }.sorted(), count: records)
    }

    /// A fine-tune-like delta: rank-2 `u v^T` (most of its norm), dense noise and a shift.
    static func delta(_ shape: [Int], name: String, scale: Float, dense: Bool = true) throws -> Tensor {
        let key = { (salt: String) in RandomKey(seed: 6, name: name + salt) }
        let noise = try LopperCore.scale(try add(try uniform(shape, key: key("noise")), -0.5), dense ? scale : 0)
        guard shape.count == 2 else { return try add(noise, scale * 0.2) }
        let (rows, cols) = (shape[0], shape[1])
        let u = try uniform([rows, 2], key: key("u")).floats(), v = try uniform([2, cols], key: key("v")).floats()
        var values = noise.floats()
        for i in 0..<rows {
            for j in 0..<cols {
                values[i * cols + j] += 3 * scale * ((u[2 * i] - 0.5) * (v[j] - 0.5) + (u[2 * i + 1] - 0.5) * (v[cols + j] - 0.5)) + (dense ? scale * 0.1 : 0)
            }
        }
        return Tensor(values, shape: shape)
    }

    /// Random sentences labeled by the fine-tuned model where it is confident, balanced.
    private func writeRecords(words: [String], count: Int) throws {
        let tokenizer = try Tokenizer(path: finetuned + "/tokenizer.json")
        let model = try loadModel(folder: finetuned)
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        var sentences: [String] = []
        for _ in 0..<(count * 3) { sentences.append((0..<(5 + next(8))).map { _ in words[next(words.count)] }.joined(separator: " ")) }
        let logits = try model.forward(sentences.map { tokenizer.encode($0) }).logits!
        var margins = logits.map { $0.floats()[1] - $0.floats()[0] }
        // Centre the head so that the fine-tuned model predicts both classes equally often.
        let median = margins.sorted()[margins.count / 2]
        margins = margins.map { $0 - median }
        let checkpoint = try Checkpoint(path: finetuned)
        var tensors = try checkpoint.names.map { ($0, try checkpoint.tensor($0).converted(to: .f32)) }
        let bias = try checkpoint.tensor("classifier.bias").floats()
        tensors = tensors.map { $0.0 == "classifier.bias" ? ($0.0, Tensor([bias[0], bias[1] - median])) : $0 }
        try saveSafetensors(tensors, to: finetuned + "/model.safetensors.new")
        try FileManager.default.removeItem(atPath: finetuned + "/model.safetensors")
        try FileManager.default.moveItem(atPath: finetuned + "/model.safetensors.new", toPath: finetuned + "/model.safetensors")
        let sorted = margins.map(Swift.abs).sorted()
        let threshold = sorted[sorted.count / 3]
        var positive: [String] = [], negative: [String] = []
        for (sentence, margin) in zip(sentences, margins) where Swift.abs(margin) >= threshold {
            if margin > 0 { positive.append(sentence) } else { negative.append(sentence) }
        }
        let each = Swift.min(positive.count, negative.count, count / 2)
        var records: [String] = []
        for index in 0..<each {
            records.append("{\"text\": \"\(positive[index])\", \"label\": \"positive\"}")
            records.append("{\"text\": \"\(negative[index])\", \"label\": \"negative\"}")
        }
        let half = records.count / 2
        try (records[..<half].joined(separator: "\n") + "\n").write(toFile: validation, atomically: true, encoding: .utf8)
        try (records[half...].joined(separator: "\n") + "\n").write(toFile: heldOut, atomically: true, encoding: .utf8)
        try (sentences.prefix(64).map { "{\"text\": \"\($0)\"}" }.joined(separator: "\n") + "\n")
            .write(toFile: unlabeled, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
