import Foundation
import LopperCore

// Reverse mode of the decoder's own pieces: RMSNorm, the gated MLP, RoPE.

/// RMSNorm `w * x / sqrt(mean(x^2) + eps)` per row; keeps x * r and r = 1/rms.
func rmsNormForward(_ x: Tensor, _ w: Parameter, eps: Float) throws -> (Tensor, LayerNormCache) {
    let cols = w.count, rows = x.count / cols
    let y = try Tensor(uninitialized: x.shape), xhat = try Tensor(uninitialized: x.shape)
    var inverse = [Float](repeating: 0, count: rows)
    let src = floats(x), dst = floats(y), n = floats(xhat), gamma = w.values
    for r in 0..<rows {
        let row = src + r * cols
        var sum: Float = 0
        for c in 0..<cols { sum += row[c] * row[c] }
        let scale = 1 / (sum / Float(cols) + eps).squareRoot()
        inverse[r] = scale
        for c in 0..<cols {
            let v = row[c] * scale
            n[r * cols + c] = v
            dst[r * cols + c] = gamma[c] * v
        }
    }
    return (y, LayerNormCache(normalized: xhat, inverseStd: inverse))
}

/// dx = r (g - xhat mean(g xhat)) with g = dy w; dw += dy xhat.
func rmsNormBackward(_ dy: Tensor, _ cache: LayerNormCache, _ w: Parameter) throws -> Tensor {
    let cols = w.count, rows = dy.count / cols
    let dx = try Tensor(uninitialized: dy.shape)
    let d = floats(dy), n = floats(cache.normalized), out = floats(dx), gamma = w.values, dw = w.grads
    for r in 0..<rows {
        var sumGX: Float = 0
        for c in 0..<cols {
            let i = r * cols + c
            sumGX += d[i] * gamma[c] * n[i]
            dw[c] += d[i] * n[i]
        }
        let meanGX = sumGX / Float(cols), scale = cache.inverseStd[r]
        for c in 0..<cols {
            let i = r * cols + c
            out[i] = scale * (d[i] * gamma[c] - n[i] * meanGX)
        }
    }
    return dx
}

extension Activation {
    /// `act(gate) * up` as a new tensor (gate and up are kept for the backward).
    func gatedForward(_ gate: Tensor, _ up: Tensor) throws -> Tensor {
        let y = try Tensor(uninitialized: gate.shape), g = floats(gate), u = floats(up), d = floats(y)
        for i in 0..<gate.count { d[i] = apply(g[i]) * u[i] }
        return y
    }

    /// d gate = dy up act'(gate), d up = dy act(gate).
    func gatedBackward(_ dy: Tensor, gate: Tensor, up: Tensor) throws -> (dGate: Tensor, dUp: Tensor) {
        let dGate = try Tensor(uninitialized: gate.shape), dUp = try Tensor(uninitialized: up.shape)
        let d = floats(dy), g = floats(gate), u = floats(up), dg = floats(dGate), du = floats(dUp)
        for i in 0..<gate.count {
            dg[i] = d[i] * u[i] * derivative(g[i])
            du[i] = d[i] * apply(g[i])
        }
        return (dGate, dUp)
    }
}

extension RotaryTables {
    /// The backward of `apply`: each pair is rotated back, in place in the gradient `dx`.
    func applyBackward(_ dx: Tensor, heads: Int, sequences: [Range<Int>]) {
        apply(dx, heads: heads, sequences: sequences, inverse: true)
    }
}

/// Next-token cross-entropy over a packed batch: row t of each sequence predicts token t + 1;
/// the mean over every prediction of the batch (as transformers' shifted labels do), and its
/// gradient in the layout of `logits` [T, vocab] (zero at each sequence's last row).
func nextTokenLoss(_ logits: Tensor, packed: PackedBatch) throws -> (loss: Double, grad: Tensor, predicted: Int) {
    let vocab = logits.shape[1]
    var rows: [Int] = [], labels: [Int] = []
    for sequence in packed.sequences where sequence.count > 1 {
        for t in sequence.lowerBound..<(sequence.upperBound - 1) { rows.append(t); labels.append(packed.ids[t + 1]) }
    }
    let grad = try Tensor(zeros: logits.shape)
    guard !rows.isEmpty else { return (0, grad, 0) }
    let picked = try Tensor(uninitialized: [rows.count, vocab])
    for (i, r) in rows.enumerated() { (floats(picked) + i * vocab).update(from: floats(logits) + r * vocab, count: vocab) }
    let (loss, pickedGrad) = try crossEntropy(picked, labels: labels)
    for (i, r) in rows.enumerated() { (floats(grad) + r * vocab).update(from: floats(pickedGrad) + i * vocab, count: vocab) }
    return (loss, grad, rows.count)
}
