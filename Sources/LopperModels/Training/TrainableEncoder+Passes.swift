import Foundation
import LopperCore

extension TrainableEncoder {
    var attentionShape: AttentionShape { AttentionShape(heads: config.numHeads, kvHeads: config.numHeads, headDim: config.headDim) }

    func forward(_ batch: [[Int]], dropout: DropoutStream?) throws -> (logits: Tensor, tape: Tape) {
        let c = config, h = c.hiddenSize
        guard !batch.isEmpty else { throw ModelError.badInput("an empty batch") }
        if batch.contains(where: \.isEmpty) { throw ModelError.badInput("an empty sequence has no [CLS] token to classify") }
        let packed = PackedBatch(batch)
        var positionIds: [Int] = []
        for rows in packed.sequences {
            let p = c.positionIds(Array(packed.ids[rows]))
            if let last = p.max(), last >= c.maxPositionEmbeddings {
                throw ModelError.badInput("sequence of \(rows.count) tokens needs position \(last); the model has \(c.maxPositionEmbeddings) positions")
            }
            positionIds += p
        }
        let e = try embed(words.value, packed.ids)
        addInPlace(e, try embed(positions.value, positionIds))
        addRowInPlace(e, tokenTypes.values, cols: h)
        let (normedEmbedding, embedNorm) = try layerNormForward(e, embedNormW, embedNormB, eps: c.normEps)
        var x = normedEmbedding
        let embedMask = try dropout?.mask("embeddings", rate: hiddenDropout, count: x.count)
        applyMask(x, embedMask)
        var tape = Tape(packed: packed, positionIds: positionIds, embedNorm: embedNorm, embedMask: embedMask)
        for (i, l) in layers.enumerated() {
            let q = try linearForward(x, l.q, l.qb), k = try linearForward(x, l.k, l.kb), v = try linearForward(x, l.v, l.vb)
            let (attended, cache) = try attentionForward(q: q, k: k, v: v, shape: attentionShape,
                                                         sequences: packed.sequences, dropout: dropout, rate: attentionDropout,
                                                         site: "layer \(i) attention")
            let o = try linearForward(attended, l.attnOut, l.attnOutB)
            let attnMask = try dropout?.mask("layer \(i) attention output", rate: hiddenDropout, count: o.count)
            applyMask(o, attnMask)
            let (normed, attnNorm) = try layerNormForward(try sum(x, o), l.attnNormW, l.attnNormB, eps: c.normEps)
            let inner = try linearForward(normed, l.inter, l.interB)
            let activated = try activation.forward(inner)
            let o2 = try linearForward(activated, l.out, l.outB)
            let outMask = try dropout?.mask("layer \(i) output", rate: hiddenDropout, count: o2.count)
            applyMask(o2, outMask)
            let (next, outNorm) = try layerNormForward(try sum(normed, o2), l.outNormW, l.outNormB, eps: c.normEps)
            tape.layers.append(LayerTape(input: x, attention: cache, attended: attended, attnMask: attnMask, attnNorm: attnNorm,
                                         normed: normed, inner: inner, activated: activated, outMask: outMask, outNorm: outNorm))
            x = next
        }
        let cls = try Tensor(uninitialized: [batch.count, h])
        for (i, rows) in packed.sequences.enumerated() {
            (floats(cls) + i * h).update(from: floats(x) + rows.lowerBound * h, count: h)
        }
        if robertaHead {
            tape.clsMask = try dropout?.mask("classifier input", rate: classifierDropout, count: cls.count)
            applyMask(cls, tape.clsMask)
        }
        tape.cls = cls
        let pooled = try tanhForward(try linearForward(cls, headDense, headDenseB))
        tape.pooled = pooled
        let headInput = try pooled.clone()
        tape.pooledMask = try dropout?.mask("classifier", rate: classifierDropout, count: headInput.count)
        applyMask(headInput, tape.pooledMask)
        tape.headInput = headInput
        return (try linearForward(headInput, headOut, headOutB), tape)
    }

    func backward(_ dLogits: Tensor, _ tape: Tape) throws {
        let c = config, h = c.hiddenSize, sequences = tape.packed.sequences
        let dHead = try linearBackward(dLogits, input: tape.headInput!, headOut, headOutB)
        applyMask(dHead, tape.pooledMask)
        let dDense = try tanhBackward(dHead, output: tape.pooled!)
        let dCls = try linearBackward(dDense, input: tape.cls!, headDense, headDenseB)
        applyMask(dCls, tape.clsMask)
        var dx = try Tensor(zeros: [tape.packed.ids.count, h])
        for (i, rows) in sequences.enumerated() {
            let row = floats(dx) + rows.lowerBound * h, g = floats(dCls) + i * h
            for j in 0..<h { row[j] += g[j] }
        }
        for (l, t) in zip(layers, tape.layers).reversed() {
            let dSum2 = try layerNormBackward(dx, t.outNorm, l.outNormW, l.outNormB)
            let dO2 = try dSum2.clone()
            applyMask(dO2, t.outMask)
            let dInner = try activation.backward(try linearBackward(dO2, input: t.activated, l.out, l.outB), input: t.inner)
            let dNormed = try linearBackward(dInner, input: t.normed, l.inter, l.interB)
            addInPlace(dNormed, dSum2)
            let dSum1 = try layerNormBackward(dNormed, t.attnNorm, l.attnNormW, l.attnNormB)
            let dO = try dSum1.clone()
            applyMask(dO, t.attnMask)
            let dAttended = try linearBackward(dO, input: t.attended, l.attnOut, l.attnOutB)
            let (dq, dk, dv) = try attentionBackward(dAttended, t.attention, shape: attentionShape, sequences: sequences)
            let dInput = dSum1
            addInPlace(dInput, try linearBackward(dq, input: t.input, l.q, l.qb))
            addInPlace(dInput, try linearBackward(dk, input: t.input, l.k, l.kb))
            addInPlace(dInput, try linearBackward(dv, input: t.input, l.v, l.vb))
            dx = dInput
        }
        applyMask(dx, tape.embedMask)
        let dEmbed = try layerNormBackward(dx, tape.embedNorm, embedNormW, embedNormB)
        embeddingBackward(dEmbed, ids: tape.packed.ids, words)
        embeddingBackward(dEmbed, ids: tape.positionIds, positions)
        sumRows(dEmbed, into: tokenTypes.grads)
    }
}
