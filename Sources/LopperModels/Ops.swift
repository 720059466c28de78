import Foundation
import LopperCore

// Transformer building blocks on contiguous F32 [rows, cols] tensors.

@inline(__always) func floats(_ t: Tensor) -> UnsafeMutablePointer<Float> {
    t.data.assumingMemoryBound(to: Float.self)
}

/// Rows `ids` of an embedding table (any float dtype), widened to F32 [ids.count, dim].
func embed(_ table: Tensor, _ ids: [Int]) throws -> Tensor {
    let rows = table.shape[0], dim = table.shape[1]
    let out = try Tensor(uninitialized: [ids.count, dim], dtype: .f32)
    for (i, id) in ids.enumerated() {
        guard id >= 0, id < rows else { throw ModelError.badInput("token id \(id) is outside the vocabulary (0..<\(rows))") }
        loadFloats(table.data.advanced(by: id * dim * table.dtype.byteSize), dtype: table.dtype,
                   into: floats(out) + i * dim, count: dim)
    }
    return out
}

/// `a += b`, same shapes.
func addInPlace(_ a: Tensor, _ b: Tensor) {
    let x = floats(a), y = floats(b)
    for i in 0..<a.count { x[i] += y[i] }
}

/// `a += v` broadcast over rows.
func addRowInPlace(_ a: Tensor, _ v: [Float]) {
    let x = floats(a), cols = v.count
    v.withUnsafeBufferPointer { v in
        for r in 0..<(a.count / cols) { for c in 0..<cols { x[r * cols + c] += v[c] } }
    }
}

/// RMSNorm (Llama): `w * x / sqrt(mean(x^2) + eps)` per row, into a new tensor.
func rmsNorm(_ x: Tensor, _ weight: [Float], eps: Float) throws -> Tensor {
    let cols = weight.count, rows = x.count / cols
    let out = try Tensor(uninitialized: x.shape, dtype: .f32)
    let src = floats(x), dst = floats(out)
    weight.withUnsafeBufferPointer { w in
        for r in 0..<rows {
            let row = src + r * cols, o = dst + r * cols
            var sum: Float = 0
            for c in 0..<cols { sum += row[c] * row[c] }
            let scale = 1 / (sum / Float(cols) + eps).squareRoot()
            for c in 0..<cols { o[c] = w[c] * (row[c] * scale) }
        }
    }
    return out
}

/// A row's mean and `1 / sqrt(var + eps)` (population variance): what LayerNorm divides
/// by, for the forward pass here and in training.
@inline(__always)
func layerNormStatistics(_ row: UnsafePointer<Float>, _ cols: Int, eps: Float) -> (mean: Float, inverseStd: Float) {
    var mean: Float = 0
    for c in 0..<cols { mean += row[c] }
    mean /= Float(cols)
    var variance: Float = 0
    for c in 0..<cols { let d = row[c] - mean; variance += d * d }
    variance /= Float(cols)
    return (mean, 1 / (variance + eps).squareRoot())
}

/// LayerNorm over the last axis, in place: `(x - mean) / sqrt(var + eps) * w + b`.
func layerNormInPlace(_ x: Tensor, _ weight: [Float], _ bias: [Float], eps: Float) {
    let cols = weight.count, rows = x.count / cols
    let p = floats(x)
    weight.withUnsafeBufferPointer { w in
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows {
                let row = p + r * cols
                let (mean, scale) = layerNormStatistics(row, cols, eps: eps)
                for c in 0..<cols { row[c] = (row[c] - mean) * scale * w[c] + b[c] }
            }
        }
    }
}

enum Activation {
    case silu, geluErf, geluTanh, relu, quickGelu

    init(_ name: String) throws {
        switch name.lowercased() {
        case "silu", "swish": self = .silu
        case "gelu": self = .geluErf
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "relu": self = .relu
        case "quick_gelu": self = .quickGelu
        default: throw ModelError.badConfig("hidden_act \"\(name)\" is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu, quick_gelu)")
        }
    }

    @inline(__always) func apply(_ x: Float) -> Float {
        switch self {
        case .silu: return x / (1 + Foundation.exp(-x))
        case .geluErf: return 0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752))
        case .geluTanh: return 0.5 * x * (1 + Foundation.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
        case .relu: return max(0, x)
        case .quickGelu: return x / (1 + Foundation.exp(-1.702 * x))
        }
    }

    func applyInPlace(_ t: Tensor) {
        let p = floats(t)
        for i in 0..<t.count { p[i] = apply(p[i]) }
    }
}

/// `act(gate) * up`, in place in `gate`.
func gatedInPlace(_ gate: Tensor, _ up: Tensor, _ act: Activation) {
    let g = floats(gate), u = floats(up)
    for i in 0..<gate.count { g[i] = act.apply(g[i]) * u[i] }
}

/// Rotary embedding tables: cos and sin [positions, headDim/2].
struct RotaryTables {
    let half: Int
    var cos: [Float] = [], sin: [Float] = []
    let inverse: [Double]

    init(_ rope: RopeConfig, headDim: Int) {
        half = headDim / 2
        inverse = rope.inverseFrequencies(headDim: headDim)
    }

    mutating func ensure(positions: Int) {
        let have = cos.count / max(1, half)
        guard positions > have else { return }
        for p in have..<positions {
            for i in 0..<half {
                // transformers: freqs = float32(inv_freq) * float32(position), then cos/sin in float32
                let angle = Float(inverse[i]) * Float(p)
                cos.append(Foundation.cos(angle))
                sin.append(Foundation.sin(angle))
            }
        }
    }

    /// Rotates each head of `x` [tokens, heads * headDim], transformers' rotate_half layout:
    /// pairs (i, i + headDim/2). The rows of each of `sequences` take positions 0, 1, ...
    /// (a packed batch); `ensure(positions:)` must cover the longest. `inverse` rotates back
    /// (the backward pass: the rotation is orthogonal, its transpose is its inverse).
    func apply(_ x: Tensor, heads: Int, sequences: [Range<Int>], inverse: Bool = false) {
        let p = floats(x), headDim = 2 * half, rowStride = heads * headDim
        let direction: Float = inverse ? -1 : 1
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                for rows in sequences {
                    for t in rows {
                        let position = t - rows.lowerBound
                        let c = cosTable.baseAddress! + position * half, s = sinTable.baseAddress! + position * half
                        for h in 0..<heads {
                            let v = p + t * rowStride + h * headDim
                            for i in 0..<half {
                                let a = v[i], b = v[i + half]
                                let sine = direction * s[i]
                                v[i] = a * c[i] - b * sine
                                v[i + half] = b * c[i] + a * sine
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Softmax of each row of `scores` [rows, cols] in place, over the columns `visible(row)`;
/// the rest are set to 0.
func softmaxRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, cols: Int, visible: (Int) -> Range<Int>) {
    for r in 0..<rows {
        let row = scores + r * cols, range = visible(r)
        var m = -Float.infinity
        for c in range { m = max(m, row[c]) }
        var sum: Float = 0
        for c in range { let e = Foundation.exp(row[c] - m); row[c] = e; sum += e }
        let inv = 1 / sum
        for c in range { row[c] *= inv }
        for c in 0..<range.lowerBound { row[c] = 0 }
        for c in range.upperBound..<cols { row[c] = 0 }
    }
}

/// Scaled dot-product attention over a packed batch: q [T, heads*d], k and v [T, kvHeads*d],
/// the rows of each of `sequences` attending only among themselves (as a padding mask would).
/// Query head h reads key/value head h / (heads / kvHeads). Causal: token i sees tokens
/// j <= i of its sequence, and with a sliding `window` only i - j < window. Returns [T, heads*d].
func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, headDim d: Int, causal: Bool,
               window: Int? = nil, sequences: [Range<Int>]) throws -> Tensor {
    let tokens = q.shape[0]
    let out = try Tensor(uninitialized: [tokens, heads * d], dtype: .f32)
    let longest = sequences.map(\.count).max() ?? 0
    guard longest > 0 else { return out }
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: longest * longest)
    defer { scores.deallocate() }
    let group = heads / kvHeads, scale = 1 / Float(d).squareRoot()
    let qs = heads * d, ks = kvHeads * d
    for rows in sequences where !rows.isEmpty {
        let length = rows.count, start = rows.lowerBound
        let visible: (Int) -> Range<Int> = !causal ? { _ in 0..<length }
            : window.map { w in { i in max(0, i - w + 1)..<(i + 1) } } ?? { i in 0..<(i + 1) }
        for h in 0..<heads {
            let kv = h / group
            sgemm(false, true, m: length, n: length, k: d, alpha: scale,
                  floats(q) + start * qs + h * d, lda: qs, floats(k) + start * ks + kv * d, ldb: ks, beta: 0, scores, ldc: length)
            softmaxRows(scores, rows: length, cols: length, visible: visible)
            sgemm(false, false, m: length, n: d, k: length,
                  scores, lda: length, floats(v) + start * ks + kv * d, ldb: ks, beta: 0, floats(out) + start * qs + h * d, ldc: qs)
        }
    }
    return out
}

/// A batch of ragged sequences packed one after another into the rows of one activation
/// matrix, so each linear layer is one SGEMM over every token of the batch; no padding.
struct PackedBatch {
    /// All token ids, sequence after sequence.
    let ids: [Int]
    /// The rows of each sequence, in input order.
    let sequences: [Range<Int>]
    let longest: Int

    init(_ batch: [[Int]]) {
        var ids: [Int] = [], sequences: [Range<Int>] = []
        ids.reserveCapacity(batch.reduce(0) { $0 + $1.count })
        for sequence in batch {
            sequences.append(ids.count..<(ids.count + sequence.count))
            ids.append(contentsOf: sequence)
        }
        self.ids = ids
        self.sequences = sequences
        longest = batch.map(\.count).max() ?? 0
    }

    /// Each sequence's rows of `x` [tokens, cols] as its own [len, cols] tensor (views, no copy).
    func split(_ x: Tensor) throws -> [Tensor] {
        let cols = x.shape[1], rowBytes = cols * x.dtype.byteSize
        return try sequences.map { rows in
            try Tensor(view: x.storage, byteOffset: x.byteOffset + rows.lowerBound * rowBytes, shape: [rows.count, cols], dtype: x.dtype)
        }
    }

    /// Row i of `x` [batch, cols] (one row per sequence) as sequence i's own [cols] tensor (views).
    func splitRows(_ x: Tensor) throws -> [Tensor] {
        let cols = x.shape[1], rowBytes = cols * x.dtype.byteSize
        return try sequences.indices.map { i in
            try Tensor(view: x.storage, byteOffset: x.byteOffset + i * rowBytes, shape: [cols], dtype: x.dtype)
        }
    }
}
