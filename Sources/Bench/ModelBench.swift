import Foundation
import LopperCore
import LopperIO
import LopperModels

/// The model `benchForward` runs: a 2-layer Llama with hidden size 768 (12 heads, 4
/// key/value heads, SwiGLU 2048, vocabulary 32000), random weights.
let benchModelConfig = """
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 768, "num_hidden_layers": 2,
 "num_attention_heads": 12, "num_key_value_heads": 4, "intermediate_size": 2048, "vocab_size": 32000,
 "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "hidden_act": "silu", "torch_dtype": "float32"}
"""

/// Writes the bench model to `folder` unless a model is already there.
func writeBenchModel(folder: String) throws {
    if FileManager.default.fileExists(atPath: folder + "/model.safetensors") { return }
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try benchModelConfig.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
    let h = 768, kv = 4 * 64, inner = 2048, vocab = 32000
    var shapes: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, h]), ("model.norm.weight", [h]), ("lm_head.weight", [vocab, h])]
    for i in 0..<2 {
        let l = "model.layers.\(i)."
        shapes += [(l + "input_layernorm.weight", [h]), (l + "post_attention_layernorm.weight", [h]),
                   (l + "self_attn.q_proj.weight", [h, h]), (l + "self_attn.k_proj.weight", [kv, h]),
                   (l + "self_attn.v_proj.weight", [kv, h]), (l + "self_attn.o_proj.weight", [h, h]),
                   (l + "mlp.gate_proj.weight", [inner, h]), (l + "mlp.up_proj.weight", [inner, h]),
                   (l + "mlp.down_proj.weight", [h, inner])]
    }
    let tensors = try shapes.map { name, shape -> (String, Tensor) in
        let t = try uniform(shape, key: RandomKey(seed: 7, name: name))
        let p = t.data.assumingMemoryBound(to: Float.self)
        // norms near 1, matrices uniform in +-0.05
        for i in 0..<t.count { p[i] = shape.count == 1 ? 0.9 + 0.2 * p[i] : 0.1 * p[i] - 0.05 }
        return (name, t)
    }
    try saveSafetensors(tensors, to: folder + "/model.safetensors")
}

/// Forward-pass throughput of the model in `folder` (written there first if missing) on
/// `batch` sequences of `length` tokens. Prints tokens per second (best of `repeats`).
func benchForward(folder: String, batch: Int = 4, length: Int = 128, repeats: Int = 3) throws {
    try writeBenchModel(folder: folder)
    let model = try loadModel(folder: folder)
    var state: UInt64 = 12345
    let inputs = (0..<batch).map { _ in
        (0..<length).map { _ -> Int in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % model.config.vocabSize
        }
    }
    var failure: Error?
    let seconds = bestTime(repeats: repeats) {
        do { _ = try model.forward(inputs) } catch { failure = error }
    }
    if let failure { throw failure }
    let tokens = batch * length
    print(String(format: "models: lopper forward %@ %d x %d tokens: %.4f s, %.0f tokens/s (cpu %.2f s)",
                 model.config.modelType, batch, length, seconds, Double(tokens) / seconds, lastBestCPU))
    // The same sequences one forward call each: what forward did before batches were packed.
    let single = bestTime(repeats: repeats) {
        do { for sequence in inputs { _ = try model.forward([sequence]) } } catch { failure = error }
    }
    if let failure { throw failure }
    print(String(format: "models: lopper one sequence per call %d x %d tokens: %.4f s, %.0f tok/s (packed batch: %.2fx)",
                 batch, length, single, Double(tokens) / single, single / seconds))
}

func benchModels() {
    let folder = ProcessInfo.processInfo.environment["LOPPER_BENCH_MODEL_DIR"] ?? NSTemporaryDirectory() + "lopper-bench-model"
    do { try benchForward(folder: folder) } catch { print("models: failed: \(error)") }
}
