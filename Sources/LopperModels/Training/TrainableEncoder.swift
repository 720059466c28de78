import Foundation
import LopperCore
import LopperIO

/// A BERT-family encoder with a sequence-classification head, as trainable F32 parameters
/// under their checkpoint names: the forward of `BertModel` (post-norm blocks, GELU MLP,
/// packed ragged batches) with dropout where transformers puts it, and its reverse mode.
/// Head: BERT's `classifier(dropout(tanh(pooler(h[CLS]))))`, or RoBERTa's
/// `out_proj(dropout(tanh(dense(dropout(h[CLS])))))`.
public final class TrainableEncoder {
    public let config: ModelConfig
    public private(set) var parameters = ParameterSet()
    let activation: Activation
    public let numLabels: Int
    /// Dropout rates from config.json (`hidden_dropout_prob`, `attention_probs_dropout_prob`,
    /// `classifier_dropout` falling back to the hidden rate).
    public var hiddenDropout: Double = 0.1, attentionDropout: Double = 0.1, classifierDropout: Double = 0.1

    struct Layer {
        let q, qb, k, kb, v, vb, attnOut, attnOutB, attnNormW, attnNormB: Parameter
        let inter, interB, out, outB, outNormW, outNormB: Parameter
    }
    let words, positions, tokenTypes, embedNormW, embedNormB: Parameter
    let layers: [Layer]
    let headDense, headDenseB, headOut, headOutB: Parameter
    let robertaHead: Bool

    /// `tensor(name)` gives the checkpoint's tensors (names as stored). `numLabels`: the
    /// head's size; the checkpoint must have a head of that size (see `FineTuneSetup` for
    /// adding one to a bare encoder).
    public init(config c: ModelConfig, numLabels: Int, tensor: (String) throws -> Tensor, has: (String) -> Bool) throws {
        guard c.architecture == .bert else {
            throw ModelError.badConfig("\(c.modelType) is a decoder; sequence classification needs a BERT-family encoder")
        }
        config = c
        self.numLabels = numLabels
        activation = try Activation(c.hiddenAct)
        let prefix = ["bert.", "roberta.", ""].first { has($0 + "embeddings.word_embeddings.weight") } ?? "bert."
        var set = ParameterSet()
        let h = c.hiddenSize, inner = c.numHeads * c.headDim
        func param(_ name: String, _ shape: [Int]) throws -> Parameter { try set.load(name, shape, from: tensor, has: has) }
        words = try param(prefix + "embeddings.word_embeddings.weight", [c.vocabSize, h])
        positions = try param(prefix + "embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h])
        tokenTypes = try param(prefix + "embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        embedNormW = try param(prefix + "embeddings.LayerNorm.weight", [h])
        embedNormB = try param(prefix + "embeddings.LayerNorm.bias", [h])
        layers = try (0..<c.numLayers).map { i in
            let l = prefix + "encoder.layer.\(i)."
            return Layer(q: try param(l + "attention.self.query.weight", [inner, h]), qb: try param(l + "attention.self.query.bias", [inner]),
                         k: try param(l + "attention.self.key.weight", [inner, h]), kb: try param(l + "attention.self.key.bias", [inner]),
                         v: try param(l + "attention.self.value.weight", [inner, h]), vb: try param(l + "attention.self.value.bias", [inner]),
                         attnOut: try param(l + "attention.output.dense.weight", [h, inner]),
                         attnOutB: try param(l + "attention.output.dense.bias", [h]),
                         attnNormW: try param(l + "attention.output.LayerNorm.weight", [h]),
                         attnNormB: try param(l + "attention.output.LayerNorm.bias", [h]),
                         inter: try param(l + "intermediate.dense.weight", [c.intermediateSize, h]),
                         interB: try param(l + "intermediate.dense.bias", [c.intermediateSize]),
                         out: try param(l + "output.dense.weight", [h, c.intermediateSize]),
                         outB: try param(l + "output.dense.bias", [h]),
                         outNormW: try param(l + "output.LayerNorm.weight", [h]),
                         outNormB: try param(l + "output.LayerNorm.bias", [h]))
        }
        robertaHead = has("classifier.dense.weight")
        if robertaHead {
            headDense = try param("classifier.dense.weight", [h, h]); headDenseB = try param("classifier.dense.bias", [h])
            headOut = try param("classifier.out_proj.weight", [numLabels, h]); headOutB = try param("classifier.out_proj.bias", [numLabels])
        } else {
            headDense = try param(prefix + "pooler.dense.weight", [h, h]); headDenseB = try param(prefix + "pooler.dense.bias", [h])
            headOut = try param("classifier.weight", [numLabels, h]); headOutB = try param("classifier.bias", [numLabels])
        }
        parameters = set
    }

    /// Everything the backward reads, for one batch.
    struct Tape {
        var packed: PackedBatch
        var positionIds: [Int]
        var embedNorm: LayerNormCache
        var embedMask: [Float]?
        var layers: [LayerTape] = []
        var cls: Tensor? = nil, clsMask: [Float]? = nil, pooled: Tensor? = nil
        var pooledMask: [Float]? = nil, headInput: Tensor? = nil
    }

    struct LayerTape {
        let input: Tensor, attention: AttentionCache, attended: Tensor, attnMask: [Float]?, attnNorm: LayerNormCache
        let normed: Tensor, inner: Tensor, activated: Tensor, outMask: [Float]?, outNorm: LayerNormCache
    }

    /// Logits [batch, numLabels].
    public func logits(_ batch: [[Int]], dropout: DropoutStream? = nil) throws -> Tensor {
        try forward(batch, dropout: dropout).logits
    }

    /// Mean cross-entropy of the batch; gradients are added to `parameters` (zero them first).
    public func lossAndGradients(_ batch: [[Int]], labels: [Int], dropout: DropoutStream? = nil) throws -> Double {
        guard labels.count == batch.count else { throw ModelError.badInput("\(labels.count) labels for \(batch.count) sequences") }
        if let bad = labels.first(where: { $0 < 0 || $0 >= numLabels }) {
            throw ModelError.badInput("label \(bad) is outside the head's \(numLabels) labels")
        }
        let (logits, tape) = try forward(batch, dropout: dropout)
        let (loss, dLogits) = try crossEntropy(logits, labels: labels)
        if loss.isFinite { try backward(dLogits, tape) }
        return loss
    }
}

extension TrainableEncoder {
    /// The encoder and head of an HF folder whose checkpoint has a classification head.
    public convenience init(folder: String) throws {
        let config = try ModelConfig.load(folder: folder)
        try config.checkFitsInMemory(source: folder + "/config.json")
        let checkpoint = try Checkpoint(path: folder)
        let head = ["classifier.weight", "classifier.out_proj.weight"].first(where: checkpoint.contains)
        guard let head, let labels = checkpoint.info(head)?.shape.first else {
            throw ModelError.missingTensors(["classifier.weight"])
        }
        try self.init(config: config, numLabels: labels, tensor: checkpoint.tensor, has: checkpoint.contains)
    }
}
