import Foundation
import LopperCore

/// BERT-family encoder (BERT, RoBERTa, MiniLM-style): word + position + token type 0
/// embeddings and LayerNorm, post-norm self-attention blocks, GELU MLP; then, when the
/// checkpoint has them, the pooler (tanh dense on [CLS]) and a sequence-classification head
/// (`classifier` on the pooled output, or RoBERTa's `classifier.dense` + `classifier.out_proj` on [CLS]).
final class BertModel: LanguageModel {
    let config: ModelConfig
    var linearInputObserver: ((String, Tensor) -> Void)?

    struct Layer {
        let q: NamedLinear, k: NamedLinear, v: NamedLinear, attnOut: NamedLinear
        let attnNorm: (w: [Float], b: [Float])
        let intermediate: NamedLinear, output: NamedLinear
        let outNorm: (w: [Float], b: [Float])
    }

    enum Head {
        /// BertForSequenceClassification: `classifier(pooled)`.
        case pooled(NamedLinear)
        /// RobertaForSequenceClassification: `out_proj(tanh(dense(hidden[CLS])))`.
        case roberta(dense: NamedLinear, outProj: NamedLinear)
    }

    let words: Tensor, positions: Tensor, tokenType: [Float]
    let embedNorm: (w: [Float], b: [Float])
    let layers: [Layer]
    let pooler: NamedLinear?
    let head: Head?
    let activation: Activation

    init(config c: ModelConfig, weights w: WeightSource) throws {
        config = c
        activation = try Activation(c.hiddenAct)
        let p = w.prefix(among: ["bert.", "roberta.", "model.", "", "encoder."], probe: "embeddings.word_embeddings.weight")
        let h = c.hiddenSize, inner = c.numHeads * c.headDim
        func norm(_ name: String) throws -> (w: [Float], b: [Float]) {
            (try w.floats(name + ".weight", [h]), try w.floats(name + ".bias", [h]))
        }
        words = try w.tensor(p + "embeddings.word_embeddings.weight", [c.vocabSize, h])
        positions = try w.tensor(p + "embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h])
        let types = try w.tensor(p + "embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        tokenType = Array(types.floats().prefix(h))
        embedNorm = try norm(p + "embeddings.LayerNorm")
        layers = try (0..<c.numLayers).map { i in
            let l = p + "encoder.layer.\(i)."
            return Layer(q: try w.linear(l + "attention.self.query", out: inner, in: h, bias: true),
                         k: try w.linear(l + "attention.self.key", out: inner, in: h, bias: true),
                         v: try w.linear(l + "attention.self.value", out: inner, in: h, bias: true),
                         attnOut: try w.linear(l + "attention.output.dense", out: h, in: inner, bias: true),
                         attnNorm: try norm(l + "attention.output.LayerNorm"),
                         intermediate: try w.linear(l + "intermediate.dense", out: c.intermediateSize, in: h, bias: true),
                         output: try w.linear(l + "output.dense", out: h, in: c.intermediateSize, bias: true),
                         outNorm: try norm(l + "output.LayerNorm"))
        }
        pooler = w.has(p + "pooler.dense.weight") ? try w.linear(p + "pooler.dense", out: h, in: h, bias: true) : nil
        func labels(_ name: String) -> Int {
            if let n = c.numLabels { return n }
            return (try? w.fetch(name))?.shape.first ?? 2
        }
        if w.has("classifier.dense.weight") {
            let n = labels("classifier.out_proj.weight")
            head = .roberta(dense: try w.linear("classifier.dense", out: h, in: h, bias: true),
                            outProj: try w.linear("classifier.out_proj", out: n, in: h, bias: true))
        } else if w.has("classifier.weight") {
            guard pooler != nil else { throw ModelError.missingTensors([p + "pooler.dense.weight", p + "pooler.dense.bias"]) }
            head = .pooled(try w.linear("classifier", out: labels("classifier.weight"), in: h, bias: true))
        } else {
            head = nil
        }
        try w.check()
    }

    /// The batch runs packed (see `PackedBatch`): every linear layer is one SGEMM over all
    /// tokens, attention and position ids are per sequence; the pooler and the classifier
    /// run once over the batch's [CLS] rows.
    func forward(_ batch: [[Int]]) throws -> ModelOutput {
        let h = config.hiddenSize, packed = PackedBatch(batch), observer = linearInputObserver
        if pooler != nil || head != nil, batch.contains(where: \.isEmpty) {
            throw ModelError.badInput("an empty sequence has no [CLS] token to pool or classify")
        }
        let x = try encode(packed)
        let hidden = try packed.split(x)
        guard pooler != nil || head != nil else { return ModelOutput(hidden: hidden) }
        let cls = try Tensor(uninitialized: [batch.count, h], dtype: .f32)
        for (i, rows) in packed.sequences.enumerated() {
            (floats(cls) + i * h).update(from: floats(x) + rows.lowerBound * h, count: h)
        }
        var pooledOut: Tensor?
        if let pooler {
            let t = try pooler(cls, observer)
            Activation.tanhInPlace(t)
            pooledOut = t
        }
        var logits: Tensor?
        switch head {
        case .pooled(let classifier)?:
            logits = try classifier(pooledOut!, observer)
        case .roberta(let dense, let outProj)?:
            let t = try dense(cls, observer)
            Activation.tanhInPlace(t)
            logits = try outProj(t, observer)
        case nil: break
        }
        return ModelOutput(hidden: hidden, logits: try logits.map(packed.splitRows), pooled: try pooledOut.map(packed.splitRows))
    }

    private func encode(_ packed: PackedBatch) throws -> Tensor {
        let c = config, observer = linearInputObserver, sequences = packed.sequences
        var positionIds: [Int] = []
        positionIds.reserveCapacity(packed.ids.count)
        for rows in sequences {
            let ids = Array(packed.ids[rows]), positions = c.positionIds(ids)
            if let last = positions.max(), last >= c.maxPositionEmbeddings {
                throw ModelError.badInput("sequence of \(ids.count) tokens needs position \(last); the model has \(c.maxPositionEmbeddings) positions")
            }
            positionIds += positions
        }
        let x = try embed(words, packed.ids)
        addInPlace(x, try embed(positions, positionIds))
        addRowInPlace(x, tokenType)
        layerNormInPlace(x, embedNorm.w, embedNorm.b, eps: c.normEps)
        for layer in layers {
            let q = try layer.q(x, observer), k = try layer.k(x, observer), v = try layer.v(x, observer)
            let attended = try attention(q: q, k: k, v: v, heads: c.numHeads, kvHeads: c.numHeads, headDim: c.headDim, causal: false,
                                     sequences: sequences)
            addInPlace(x, try layer.attnOut(attended, observer))
            layerNormInPlace(x, layer.attnNorm.w, layer.attnNorm.b, eps: c.normEps)
            let inner = try layer.intermediate(x, observer)
            activation.applyInPlace(inner)
            addInPlace(x, try layer.output(inner, observer))
            layerNormInPlace(x, layer.outNorm.w, layer.outNorm.b, eps: c.normEps)
        }
        return x
    }
}

extension ModelConfig {
    /// BERT-family position ids as transformers makes them: 0, 1, ... for BERT; for RoBERTa-style
    /// models `padding_idx + 1 + (non-pad tokens so far)`, and `padding_idx` at pad tokens.
    func positionIds(_ ids: [Int]) -> [Int] {
        guard positionOffset > 0 else { return Array(0..<ids.count) }
        let pad = positionOffset - 1
        var seen = 0
        return ids.map { id in
            if id == pad { return pad }
            seen += 1
            return pad + seen
        }
    }
}

extension Activation {
    static func tanhInPlace(_ t: Tensor) {
        let p = floats(t)
        for i in 0..<t.count { p[i] = Foundation.tanh(p[i]) }
    }
}
