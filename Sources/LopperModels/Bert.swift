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
        func norm(_ name: String) -> (w: [Float], b: [Float]) {
            (w.floats(name + ".weight", [h]), w.floats(name + ".bias", [h]))
        }
        words = w.tensor(p + "embeddings.word_embeddings.weight", [c.vocabSize, h])
        positions = w.tensor(p + "embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h])
        let types = w.tensor(p + "embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        tokenType = Array(types.floats().prefix(h))
        embedNorm = norm(p + "embeddings.LayerNorm")
        layers = try (0..<c.numLayers).map { i in
            let l = p + "encoder.layer.\(i)."
            return Layer(q: try w.linear(l + "attention.self.query", out: inner, in: h, bias: true),
                         k: try w.linear(l + "attention.self.key", out: inner, in: h, bias: true),
                         v: try w.linear(l + "attention.self.value", out: inner, in: h, bias: true),
                         attnOut: try w.linear(l + "attention.output.dense", out: h, in: inner, bias: true),
                         attnNorm: norm(l + "attention.output.LayerNorm"),
                         intermediate: try w.linear(l + "intermediate.dense", out: c.intermediateSize, in: h, bias: true),
                         output: try w.linear(l + "output.dense", out: h, in: c.intermediateSize, bias: true),
                         outNorm: norm(l + "output.LayerNorm"))
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

    func forward(_ batch: [[Int]]) throws -> ModelOutput {
        var hidden: [Tensor] = [], pooled: [Tensor] = [], logits: [Tensor] = []
        for ids in batch {
            let x = try encode(ids)
            hidden.append(x)
            guard pooler != nil || head != nil else { continue }
            guard !ids.isEmpty else { throw ModelError.badInput("an empty sequence has no [CLS] token to pool or classify") }
            let cls = try Tensor(view: x.storage, byteOffset: x.byteOffset, shape: [1, config.hiddenSize], dtype: .f32).clone()
            var pooledOut: Tensor?
            if let pooler {
                let t = try pooler(cls, linearInputObserver)
                Activation.tanhInPlace(t)
                pooledOut = t
                pooled.append(try t.reshaped([config.hiddenSize]))
            }
            switch head {
            case .pooled(let classifier)?:
                let out = try classifier(pooledOut!, linearInputObserver)
                logits.append(try out.reshaped([out.count]))
            case .roberta(let dense, let outProj)?:
                let t = try dense(cls, linearInputObserver)
                Activation.tanhInPlace(t)
                let out = try outProj(t, linearInputObserver)
                logits.append(try out.reshaped([out.count]))
            case nil: break
            }
        }
        return ModelOutput(hidden: hidden, logits: head == nil ? nil : logits, pooled: pooler == nil ? nil : pooled)
    }

    /// Position ids as transformers makes them: 0, 1, ... for BERT; for RoBERTa-style
    /// models `padding_idx + 1 + (non-pad tokens so far)`, and `padding_idx` at pad tokens.
    func positionIds(_ ids: [Int]) -> [Int] {
        guard config.positionOffset > 0 else { return Array(0..<ids.count) }
        let pad = config.positionOffset - 1
        var seen = 0
        return ids.map { id in
            if id == pad { return pad }
            seen += 1
            return pad + seen
        }
    }

    private func encode(_ ids: [Int]) throws -> Tensor {
        let c = config, observer = linearInputObserver
        let positionIds = positionIds(ids)
        if let last = positionIds.max(), last >= c.maxPositionEmbeddings {
            throw ModelError.badInput("sequence of \(ids.count) tokens needs position \(last); the model has \(c.maxPositionEmbeddings) positions")
        }
        let x = try embed(words, ids)
        addInPlace(x, try embed(positions, positionIds))
        addRowInPlace(x, tokenType)
        layerNormInPlace(x, embedNorm.w, embedNorm.b, eps: c.normEps)
        for layer in layers {
            let q = try layer.q(x, observer), k = try layer.k(x, observer), v = try layer.v(x, observer)
            let attended = attention(q: q, k: k, v: v, heads: c.numHeads, kvHeads: c.numHeads, headDim: c.headDim, causal: false)
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

extension Activation {
    static func tanhInPlace(_ t: Tensor) {
        let p = floats(t)
        for i in 0..<t.count { p[i] = Foundation.tanh(p[i]) }
    }
}
