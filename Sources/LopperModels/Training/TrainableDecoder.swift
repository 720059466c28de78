import Foundation
import LopperCore
import LopperIO

/// A Llama-family decoder (Llama, Qwen2, Mistral) as trainable F32 parameters under their
/// checkpoint names, for language modelling: the forward of `LlamaModel` (pre-norm RMSNorm
/// blocks, RoPE, grouped-query causal attention with Mistral's window, SwiGLU, tied or own
/// `lm_head`, biases where the checkpoint has them) and its reverse mode. No dropout
/// (these configs have none).
public final class TrainableDecoder: TrainableModel {
    public let config: ModelConfig
    public private(set) var parameters = ParameterSet()
    let activation: Activation
    var rotary: RotaryTables

    struct Layer {
        let inputNorm, postNorm: Parameter
        let q, k, v, o, gate, up, down: Parameter
        let qb, kb, vb, ob, gateB, upB, downB: Parameter?
    }
    let embedTokens: Parameter
    let layers: [Layer]
    let finalNorm: Parameter
    /// `lm_head.weight`, or the embeddings when tied.
    let head: Parameter

    public init(config c: ModelConfig, tensor: (String) throws -> Tensor, has: (String) -> Bool) throws {
        guard c.architecture == .llama else {
            throw ModelError.badConfig("\(c.modelType) is an encoder; language-model training needs a Llama-family decoder")
        }
        config = c
        activation = try Activation(c.hiddenAct)
        rotary = RotaryTables(c.rope ?? RopeConfig(theta: 10000, kind: .plain), headDim: c.headDim)
        let p = ["model.", "", "transformer."].first { has($0 + "embed_tokens.weight") } ?? "model."
        let h = c.hiddenSize, qOut = c.numHeads * c.headDim, kvOut = c.numKeyValueHeads * c.headDim
        var set = ParameterSet()
        func param(_ name: String, _ shape: [Int]) throws -> Parameter { try set.load(name, shape, from: tensor, has: has) }
        func optional(_ name: String, _ shape: [Int]) throws -> Parameter? { has(name) ? try param(name, shape) : nil }
        embedTokens = try param(p + "embed_tokens.weight", [c.vocabSize, h])
        layers = try (0..<c.numLayers).map { i in
            let l = p + "layers.\(i)."
            return Layer(inputNorm: try param(l + "input_layernorm.weight", [h]), postNorm: try param(l + "post_attention_layernorm.weight", [h]),
                         q: try param(l + "self_attn.q_proj.weight", [qOut, h]), k: try param(l + "self_attn.k_proj.weight", [kvOut, h]),
                         v: try param(l + "self_attn.v_proj.weight", [kvOut, h]), o: try param(l + "self_attn.o_proj.weight", [h, qOut]),
                         gate: try param(l + "mlp.gate_proj.weight", [c.intermediateSize, h]),
                         up: try param(l + "mlp.up_proj.weight", [c.intermediateSize, h]),
                         down: try param(l + "mlp.down_proj.weight", [h, c.intermediateSize]),
                         qb: try optional(l + "self_attn.q_proj.bias", [qOut]), kb: try optional(l + "self_attn.k_proj.bias", [kvOut]),
                         vb: try optional(l + "self_attn.v_proj.bias", [kvOut]), ob: try optional(l + "self_attn.o_proj.bias", [h]),
                         gateB: try optional(l + "mlp.gate_proj.bias", [c.intermediateSize]),
                         upB: try optional(l + "mlp.up_proj.bias", [c.intermediateSize]), downB: try optional(l + "mlp.down_proj.bias", [h]))
        }
        finalNorm = try param(p + "norm.weight", [h])
        head = has("lm_head.weight") || !c.tieWordEmbeddings ? try param("lm_head.weight", [c.vocabSize, h]) : embedTokens
        parameters = set
    }

    /// The decoder of an HF folder.
    public convenience init(folder: String) throws {
        let config = try ModelConfig.load(folder: folder)
        try config.checkFitsInMemory(source: folder + "/config.json")
        let checkpoint = try Checkpoint(path: folder)
        try self.init(config: config, tensor: checkpoint.tensor, has: checkpoint.contains)
    }

    struct LayerTape {
        let input: Tensor, inputNorm: LayerNormCache, normed: Tensor, attention: AttentionCache, attended: Tensor
        let postNorm: LayerNormCache, normed2: Tensor, gate: Tensor, up: Tensor, gated: Tensor
    }

    var attentionShape: AttentionShape {
        AttentionShape(heads: config.numHeads, kvHeads: config.numKeyValueHeads, headDim: config.headDim, causal: true, window: config.slidingWindow)
    }

    /// Logits [T, vocab] of the packed batch, and what the backward needs.
    func forward(_ packed: PackedBatch) throws -> (logits: Tensor, layers: [LayerTape], finalInput: Tensor, finalNorm: LayerNormCache, out: Tensor) {
        let c = config, sequences = packed.sequences
        rotary.ensure(positions: packed.longest)
        var x = try embed(embedTokens.value, packed.ids)
        var tapes: [LayerTape] = []
        for (i, l) in layers.enumerated() {
            let (normed, inputNorm) = try rmsNormForward(x, l.inputNorm, eps: c.normEps)
            let q = try linearForward(normed, l.q, l.qb), k = try linearForward(normed, l.k, l.kb), v = try linearForward(normed, l.v, l.vb)
            rotary.apply(q, heads: c.numHeads, sequences: sequences)
            rotary.apply(k, heads: c.numKeyValueHeads, sequences: sequences)
            let (attended, cache) = try attentionForward(q: q, k: k, v: v, shape: attentionShape, sequences: sequences,
                                                         dropout: nil, rate: 0, site: "layer \(i) attention")
            let x1 = try sum(x, try linearForward(attended, l.o, l.ob))
            let (normed2, postNorm) = try rmsNormForward(x1, l.postNorm, eps: c.normEps)
            let gate = try linearForward(normed2, l.gate, l.gateB), up = try linearForward(normed2, l.up, l.upB)
            let gated = try activation.gatedForward(gate, up)
            tapes.append(LayerTape(input: x, inputNorm: inputNorm, normed: normed, attention: cache, attended: attended,
                                   postNorm: postNorm, normed2: normed2, gate: gate, up: up, gated: gated))
            x = try sum(x1, try linearForward(gated, l.down, l.downB))
        }
        let (out, norm) = try rmsNormForward(x, finalNorm, eps: c.normEps)
        return (try linearForward(out, head, nil), tapes, x, norm, out)
    }

    /// Logits of each sequence, F32 [len, vocab].
    public func logits(_ batch: [[Int]]) throws -> [Tensor] {
        let packed = PackedBatch(batch)
        return try packed.split(try forward(packed).logits)
    }

    /// Mean next-token loss of the batch (labels ignored); gradients added to `parameters`.
    public func lossAndGradients(_ batch: [TrainingExample], dropout: DropoutStream?) throws -> Double {
        let packed = PackedBatch(batch.map(\.ids))
        guard packed.sequences.contains(where: { $0.count > 1 }) else { throw ModelError.badInput("no sequence of 2 or more tokens to predict") }
        let f = try forward(packed)
        let (loss, dLogits, _) = try nextTokenLoss(f.logits, packed: packed)
        guard loss.isFinite else { return loss }
        let c = config, sequences = packed.sequences
        var dx = try rmsNormBackward(try linearBackward(dLogits, input: f.out, head, nil), f.finalNorm, finalNorm)
        for (l, t) in zip(layers, f.layers).reversed() {
            let dGated = try linearBackward(dx, input: t.gated, l.down, l.downB)
            let (dGate, dUp) = try activation.gatedBackward(dGated, gate: t.gate, up: t.up)
            let dNormed2 = try linearBackward(dGate, input: t.normed2, l.gate, l.gateB)
            addInPlace(dNormed2, try linearBackward(dUp, input: t.normed2, l.up, l.upB))
            let dx1 = dx
            addInPlace(dx1, try rmsNormBackward(dNormed2, t.postNorm, l.postNorm))
            let dAttended = try linearBackward(dx1, input: t.attended, l.o, l.ob)
            let (dq, dk, dv) = try attentionBackward(dAttended, t.attention, shape: attentionShape, sequences: sequences)
            rotary.applyBackward(dq, heads: c.numHeads, sequences: sequences)
            rotary.applyBackward(dk, heads: c.numKeyValueHeads, sequences: sequences)
            let dNormed = try linearBackward(dq, input: t.normed, l.q, l.qb)
            addInPlace(dNormed, try linearBackward(dk, input: t.normed, l.k, l.kb))
            addInPlace(dNormed, try linearBackward(dv, input: t.normed, l.v, l.vb))
            addInPlace(dx1, try rmsNormBackward(dNormed, t.inputNorm, l.inputNorm))
            dx = dx1
        }
        embeddingBackward(dx, ids: packed.ids, embedTokens)
        return loss
    }
}
