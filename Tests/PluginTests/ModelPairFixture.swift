import Foundation
import LopperCore
import LopperIO

/// A tiny Llama-family base / fine-tuned pair that runs (config.json, F32 weights,
/// the llama3_bpe test tokenizer), for calibration, search and evaluation tests.
/// The input norms' weights vary a lot across features, so per-feature input norms
/// differ and WANDA has something to see; `deltaScale` sets how large the deltas are.
struct ModelPairFixture {
    let folder: String
    var base: String { folder + "/base" }
    var finetuned: String { folder + "/finetuned" }
    var text: String { folder + "/calibration.txt" }

    static let hidden = 32, intermediate = 64, layers = 2
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LopperModelsTests/Fixtures")
    }

    init(deltaScale: Float, deltaShift: Float = 0) throws {
        folder = NSTemporaryDirectory() + "lopper-models-\(UUID().uuidString)"
        let tokenizer = Self.fixtures.appendingPathComponent("tokenizers/llama3_bpe/tokenizer.json")
        let vocab = try Self.vocabularySize(tokenizer)
        let config = """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(Self.hidden),
         "intermediate_size": \(Self.intermediate), "num_hidden_layers": \(Self.layers), "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 8, "vocab_size": \(vocab), "rms_norm_eps": 1e-05,
         "rope_theta": 10000.0, "max_position_embeddings": 256, "hidden_act": "silu", "tie_word_embeddings": false}
        """
        var shapes: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, Self.hidden])]
        for layer in 0..<Self.layers {
            let p = "model.layers.\(layer)."
            shapes += [(p + "input_layernorm.weight", [Self.hidden]),
                       (p + "self_attn.q_proj.weight", [Self.hidden, Self.hidden]), (p + "self_attn.k_proj.weight", [16, Self.hidden]),
                       (p + "self_attn.v_proj.weight", [16, Self.hidden]), (p + "self_attn.o_proj.weight", [Self.hidden, Self.hidden]),
                       (p + "post_attention_layernorm.weight", [Self.hidden]),
                       (p + "mlp.gate_proj.weight", [Self.intermediate, Self.hidden]), (p + "mlp.up_proj.weight", [Self.intermediate, Self.hidden]),
                       (p + "mlp.down_proj.weight", [Self.hidden, Self.intermediate])]
        }
        shapes += [("model.norm.weight", [Self.hidden]), ("lm_head.weight", [vocab, Self.hidden])]
        for (which, isFinetuned) in [("base", false), ("finetuned", true)] {
            var tensors: [(String, Tensor)] = []
            for (name, shape) in shapes {
                var tensor: Tensor
                if shape.count == 1 {
                    // Norm weights from 0.1 to 3: features of very different sizes.
                    tensor = Tensor((0..<shape[0]).map { 0.1 + 2.9 * Float(($0 * 7) % shape[0]) / Float(shape[0] - 1) })
                } else {
                    tensor = try scale(try add(try uniform(shape, key: RandomKey(seed: 5, name: name)), -0.5), 0.6)
                }
                if isFinetuned, shape.count == 2, name.contains("layers") {
                    let noise = try add(try scale(try add(try uniform(shape, key: RandomKey(seed: 6, name: name)), -0.5), deltaScale), deltaShift)
                    tensor = try add(tensor, noise)
                }
                tensors.append((name, tensor))
            }
            let out = folder + "/" + which
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try saveSafetensors(tensors, to: out + "/model.safetensors")
            try config.write(toFile: out + "/config.json", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: tokenizer.path, toPath: out + "/tokenizer.json")
        }
        let sentences = [
            "The quick brown fox jumps over the lazy dog.", "Pruning removes most of the delta parameters.",
            "Language models learn from large amounts of text.", "She sells sea shells by the sea shore.",
            "Numbers like 42 and 1999 appear in the text too.", "A fine-tuned model differs a little from its base.",
        ]
        try (0..<12).map { sentences[$0 % sentences.count] }.joined(separator: " ").write(toFile: text, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }

    private static func vocabularySize(_ tokenizer: URL) throws -> Int {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: tokenizer)) as? [String: Any]
        let vocab = ((object?["model"] as? [String: Any])?["vocab"] as? [String: Any])?.count ?? 0
        let added = (object?["added_tokens"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }.max() ?? 0
        return max(vocab, added + 1)
    }
}
