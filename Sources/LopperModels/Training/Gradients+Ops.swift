import Foundation
import LopperCore

// Reverse-mode pieces of the encoder, each a forward that keeps what its backward needs.
// Tensors are contiguous F32 [rows, cols]; parameter gradients accumulate (+=).

/// `y = x W^T + b` for `x` [T, in], `W` [out, in].
func linearForward(_ x: Tensor, _ w: Parameter, _ b: Parameter?) throws -> Tensor {
    let tokens = x.shape[0], inF = w.shape[1], outF = w.shape[0]
    let y = try Tensor(uninitialized: [tokens, outF])
    sgemm(false, true, m: tokens, n: outF, k: inF, floats(x), lda: inF, w.values, ldb: inF, beta: 0, floats(y), ldc: outF)
    if let b { addRowInPlace(y, b.values, cols: outF) }
    return y
}

/// Accumulates dW += dy^T x, db += sum of dy's rows; returns dx = dy W.
func linearBackward(_ dy: Tensor, input x: Tensor, _ w: Parameter, _ b: Parameter?) throws -> Tensor {
    let tokens = x.shape[0], inF = w.shape[1], outF = w.shape[0]
    sgemm(true, false, m: outF, n: inF, k: tokens, floats(dy), lda: outF, floats(x), ldb: inF, beta: 1, w.grads, ldc: inF)
    if let b { sumRows(dy, into: b.grads) }
    let dx = try Tensor(uninitialized: [tokens, inF])
    sgemm(false, false, m: tokens, n: inF, k: outF, floats(dy), lda: outF, w.values, ldb: inF, beta: 0, floats(dx), ldc: inF)
    return dx
}

func addRowInPlace(_ a: Tensor, _ v: UnsafePointer<Float>, cols: Int) {
    let x = floats(a), rows = a.count / max(1, cols)
    Parallel.forEachChunk(count: rows, chunk: max(1, Parallel.chunkSize / max(1, cols))) { range in
        for r in range { for c in 0..<cols { x[r * cols + c] += v[c] } }
    }
}

/// `target[c] += sum over rows of t[r, c]`.
func sumRows(_ t: Tensor, into target: UnsafeMutablePointer<Float>) {
    // Column blocks on the worker threads; each column adds its rows in order.
    let cols = t.shape[1], rows = t.shape[0], p = floats(t), block = 64
    Parallel.forEach((cols + block - 1) / block) { b in
        let columns = b * block..<min(cols, (b + 1) * block)
        for r in 0..<rows { for c in columns { target[c] += p[r * cols + c] } }
    }
}

/// Scatter-add of `dy` [ids.count, dim] into the rows `ids` of an embedding table's gradient.
func embeddingBackward(_ dy: Tensor, ids: [Int], _ table: Parameter) {
    let dim = table.shape[1], g = table.grads, d = floats(dy)
    for (i, id) in ids.enumerated() { for c in 0..<dim { g[id * dim + c] += d[i * dim + c] } }
}

/// LayerNorm over rows, keeping the normalised rows and 1/std for the backward.
struct LayerNormCache {
    let normalized: Tensor
    let inverseStd: [Float]
}

func layerNormForward(_ x: Tensor, _ w: Parameter, _ b: Parameter, eps: Float) throws -> (Tensor, LayerNormCache) {
    let cols = w.count, rows = x.count / cols
    let y = try Tensor(uninitialized: x.shape), xhat = try Tensor(uninitialized: x.shape)
    var inverse = [Float](repeating: 0, count: rows)
    let src = floats(x), dst = floats(y), n = floats(xhat), gamma = w.values, beta = b.values
    for r in 0..<rows {
        let row = src + r * cols
        let (mean, scale) = layerNormStatistics(row, cols, eps: eps)
        inverse[r] = scale
        for c in 0..<cols {
            let v = (row[c] - mean) * scale
            n[r * cols + c] = v
            dst[r * cols + c] = v * gamma[c] + beta[c]
        }
    }
    return (y, LayerNormCache(normalized: xhat, inverseStd: inverse))
}

/// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w; dw += dy xhat, db += dy.
func layerNormBackward(_ dy: Tensor, _ cache: LayerNormCache, _ w: Parameter, _ b: Parameter) throws -> Tensor {
    let cols = w.count, rows = dy.count / cols
    let dx = try Tensor(uninitialized: dy.shape)
    let d = floats(dy), n = floats(cache.normalized), out = floats(dx), gamma = w.values, dw = w.grads, db = b.grads
    for r in 0..<rows {
        var sumG: Float = 0, sumGX: Float = 0
        for c in 0..<cols {
            let i = r * cols + c, g = d[i] * gamma[c]
            sumG += g
            sumGX += g * n[i]
            dw[c] += d[i] * n[i]
            db[c] += d[i]
        }
        let meanG = sumG / Float(cols), meanGX = sumGX / Float(cols), scale = cache.inverseStd[r]
        for c in 0..<cols {
            let i = r * cols + c
            out[i] = scale * (d[i] * gamma[c] - meanG - n[i] * meanGX)
        }
    }
    return dx
}

extension Activation {
    /// d act(x) / dx.
    @inline(__always) func derivative(_ x: Float) -> Float {
        switch self {
        case .silu:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        case .geluErf:
            return 0.5 * (1 + Foundation.erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * Foundation.exp(-0.5 * x * x)
        case .geluTanh:
            let k: Float = 0.79788456080286536, u = k * (x + 0.044715 * x * x * x), t = Foundation.tanh(u)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        case .relu: return x > 0 ? 1 : 0
        case .quickGelu:
            let s = 1 / (1 + Foundation.exp(-1.702 * x))
            return s * (1 + 1.702 * x * (1 - s))
        }
    }

    /// act(x) as a new tensor (x is kept for the backward).
    func forward(_ x: Tensor) throws -> Tensor {
        let y = try Tensor(uninitialized: x.shape), s = floats(x), d = floats(y)
        Parallel.forEachChunk(count: x.count) { r in for i in r { d[i] = apply(s[i]) } }
        return y
    }

    /// dy * act'(x).
    func backward(_ dy: Tensor, input x: Tensor) throws -> Tensor {
        let dx = try Tensor(uninitialized: x.shape), g = floats(dy), s = floats(x), d = floats(dx)
        Parallel.forEachChunk(count: x.count) { r in for i in r { d[i] = g[i] * derivative(s[i]) } }
        return dx
    }
}

/// tanh as a new tensor; its backward needs only the output: dy (1 - y^2).
func tanhForward(_ x: Tensor) throws -> Tensor {
    let y = try Tensor(uninitialized: x.shape), s = floats(x), d = floats(y)
    for i in 0..<x.count { d[i] = Foundation.tanh(s[i]) }
    return y
}

func tanhBackward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
    let dx = try Tensor(uninitialized: y.shape), g = floats(dy), s = floats(y), d = floats(dx)
    for i in 0..<y.count { d[i] = g[i] * (1 - s[i] * s[i]) }
    return dx
}

/// `a + b` as a new tensor.
func sum(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let y = try a.clone()
    addInPlace(y, b)
    return y
}

/// Mean cross-entropy of `logits` [B, C] against `labels`, and d loss / d logits.
func crossEntropy(_ logits: Tensor, labels: [Int]) throws -> (loss: Double, grad: Tensor) {
    let rows = logits.shape[0], cols = logits.shape[1]
    let grad = try Tensor(uninitialized: logits.shape)
    let l = floats(logits), g = floats(grad)
    var loss: Double = 0
    for r in 0..<rows {
        let row = l + r * cols, out = g + r * cols
        var m = -Float.infinity
        for c in 0..<cols { m = max(m, row[c]) }
        var total: Double = 0
        for c in 0..<cols { let e = Foundation.exp(Double(row[c] - m)); out[c] = Float(e); total += e }
        loss += log(total) + Double(m) - Double(row[labels[r]])
        for c in 0..<cols { out[c] = Float(Double(out[c]) / total) / Float(rows) }
        out[labels[r]] -= 1 / Float(rows)
    }
    return (loss / Double(rows), grad)
}
