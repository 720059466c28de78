import LopperCore

/// Llama-family decoder (Llama, Qwen2, Mistral): pre-norm RMSNorm blocks, RoPE,
/// grouped-query causal attention (Mistral's sliding window when the config has one), SwiGLU MLP, final norm, lm_head (or tied embeddings).
/// Biases are used wherever the checkpoint has them (Qwen2's q/k/v, `attention_bias`, `mlp_bias`).
final class LlamaModel: LanguageModel {
    let config: ModelConfig
    var linearInputObserver: ((String, Tensor) -> Void)?

    struct Layer {
        let inputNorm: [Float], postNorm: [Float]
        let q: NamedLinear, k: NamedLinear, v: NamedLinear, o: NamedLinear
        let gate: NamedLinear, up: NamedLinear, down: NamedLinear
    }

    let embedTokens: Tensor
    let layers: [Layer]
    let finalNorm: [Float]
    /// Nil when tied: the head then multiplies by `tiedHead` (the embeddings in F32).
    let lmHead: NamedLinear?
    let tiedHead: Linear?
    let activation: Activation
    var rotary: RotaryTables

    init(config c: ModelConfig, weights w: WeightSource) throws {
        config = c
        activation = try Activation(c.hiddenAct)
        let p = w.prefix(among: ["model.", "", "transformer."], probe: "embed_tokens.weight")
        let h = c.hiddenSize, qOut = c.numHeads * c.headDim, kvOut = c.numKeyValueHeads * c.headDim
        embedTokens = try w.tensor(p + "embed_tokens.weight", [c.vocabSize, h])
        layers = try (0..<c.numLayers).map { i in
            let l = p + "layers.\(i)."
            return Layer(inputNorm: try w.floats(l + "input_layernorm.weight", [h]),
                         postNorm: try w.floats(l + "post_attention_layernorm.weight", [h]),
                         q: try w.linear(l + "self_attn.q_proj", out: qOut, in: h),
                         k: try w.linear(l + "self_attn.k_proj", out: kvOut, in: h),
                         v: try w.linear(l + "self_attn.v_proj", out: kvOut, in: h),
                         o: try w.linear(l + "self_attn.o_proj", out: h, in: qOut),
                         gate: try w.linear(l + "mlp.gate_proj", out: c.intermediateSize, in: h),
                         up: try w.linear(l + "mlp.up_proj", out: c.intermediateSize, in: h),
                         down: try w.linear(l + "mlp.down_proj", out: h, in: c.intermediateSize))
        }
        finalNorm = try w.floats(p + "norm.weight", [h])
        if w.has("lm_head.weight") || !c.tieWordEmbeddings {
            lmHead = try w.linear("lm_head", out: c.vocabSize, in: h, bias: false)
            tiedHead = nil
        } else {
            lmHead = nil
            tiedHead = try Linear(weight: embedTokens)
        }
        try w.check()
        rotary = RotaryTables(c.rope ?? RopeConfig(theta: 10000, kind: .plain), headDim: c.headDim)
    }

    /// The batch runs packed (see `PackedBatch`): every linear layer is one SGEMM over all
    /// tokens; RoPE positions, the causal mask and the sliding window are per sequence.
    func forward(_ batch: [[Int]]) throws -> ModelOutput {
        let c = config, observer = linearInputObserver, packed = PackedBatch(batch), sequences = packed.sequences
        rotary.ensure(positions: packed.longest)
        let x = try embed(embedTokens, packed.ids)
        for layer in layers {
            let normed = try rmsNorm(x, layer.inputNorm, eps: c.normEps)
            let q = try layer.q(normed, observer), k = try layer.k(normed, observer), v = try layer.v(normed, observer)
            rotary.apply(q, heads: c.numHeads, sequences: sequences)
            rotary.apply(k, heads: c.numKeyValueHeads, sequences: sequences)
            let attended = try attention(q: q, k: k, v: v, heads: c.numHeads, kvHeads: c.numKeyValueHeads,
                                     headDim: c.headDim, causal: true, window: c.slidingWindow, sequences: sequences)
            addInPlace(x, try layer.o(attended, observer))
            let normed2 = try rmsNorm(x, layer.postNorm, eps: c.normEps)
            let gate = try layer.gate(normed2, observer), up = try layer.up(normed2, observer)
            gatedInPlace(gate, up, activation)
            addInPlace(x, try layer.down(gate, observer))
        }
        let out = try rmsNorm(x, finalNorm, eps: c.normEps)
        let logits = try lmHead.map { try $0(out, observer) } ?? tiedHead!(out)
        return ModelOutput(hidden: try packed.split(out), logits: try packed.split(logits))
    }
}
