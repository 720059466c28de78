import Foundation
import LopperCore

/// Dropout masks from Philox, keyed by (seed, step, site name): the same run drops the
/// same entries on any machine or thread count, and nothing needs storing to replay it.
public struct DropoutStream: Sendable {
    public let seed: UInt64
    public let step: Int

    public init(seed: UInt64, step: Int) {
        self.seed = seed
        self.step = step
    }

    /// The stream of site `name` at this step.
    func key(_ name: String) -> RandomKey { RandomKey(seed: seed, name: "dropout/\(name)/step \(step)") }

    /// The scaled mask for `count` elements (0 or 1/keep each), nil when nothing is dropped.
    func mask(_ name: String, rate: Double, count: Int) throws -> [Float]? {
        guard rate > 0, count > 0 else { return nil }
        let keep = 1 - rate, bits = try bernoulliMask([count], keep: keep, key: key(name))
        let b = bits.data.assumingMemoryBound(to: UInt8.self), scale = Float(1 / keep)
        return [Float](unsafeUninitializedCapacity: count) { values, initialized in
            let target = values.baseAddress!
            Parallel.forEachChunk(count: count) { r in for i in r { target[i] = b[i] != 0 ? scale : 0 } }
            initialized = count
        }
    }
}

/// `x * mask` in place (forward) or `dy * mask` (backward): both are the same product.
func applyMask(_ t: Tensor, _ mask: [Float]?) {
    guard let mask else { return }
    let p = floats(t)
    mask.withUnsafeBufferPointer { m in
        Parallel.forEachChunk(count: t.count) { r in for i in r { p[i] *= m[i] } }
    }
}

/// What the attention backward needs: the softmax probabilities of every (sequence, head)
/// block, before dropout, and the dropout mask over the same layout.
struct AttentionCache {
    let q: Tensor, k: Tensor, v: Tensor
    /// Per sequence s and head h, an [n, n] block at `offsets[s] + h * n * n`.
    let probabilities: [Float]
    let offsets: [Int]
    let mask: [Float]?
}

/// The attention pattern: which query heads read which key/value head, and which keys each
/// query sees (all of its sequence: the padding mask; or causal, optionally windowed).
struct AttentionShape {
    let heads: Int, kvHeads: Int, headDim: Int
    var causal = false
    var window: Int? = nil

    var group: Int { heads / kvHeads }
    var queryWidth: Int { heads * headDim }
    var keyWidth: Int { kvHeads * headDim }

    func visible(_ i: Int, length: Int) -> Range<Int> {
        guard causal else { return 0..<length }
        let first = window.map { max(0, i - $0 + 1) } ?? 0
        return first..<(i + 1)
    }
}

/// The units attention work is split into: one sequence and one key/value head with the
/// query heads of its group. Units write disjoint parts of every output (the sequence's
/// rows; the group's columns), and each unit's sums run in one fixed order, so the result
/// is the same on any thread count.
private func forEachAttentionUnit(_ sequences: [Range<Int>], _ a: AttentionShape,
                                  scratch: Int, _ body: (_ s: Int, _ rows: Range<Int>, _ kv: Int, _ scratch: UnsafeMutablePointer<Float>) -> Void) {
    let units = sequences.count * a.kvHeads
    Parallel.forEach(units) { unit in
        let s = unit / a.kvHeads, rows = sequences[s], n = rows.count
        guard n > 0 else { return }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: scratch * n * n)
        defer { buffer.deallocate() }
        body(s, rows, unit % a.kvHeads, buffer)
    }
}

/// Softmax attention over a packed batch, each sequence seeing only itself, with dropout on
/// the probabilities as transformers applies it. q [T, heads*d], k and v [T, kvHeads*d].
func attentionForward(q: Tensor, k: Tensor, v: Tensor, shape a: AttentionShape, sequences: [Range<Int>],
                      dropout: DropoutStream?, rate: Double, site: String) throws -> (Tensor, AttentionCache) {
    let d = a.headDim, qw = a.queryWidth, kw = a.keyWidth, scale = 1 / Float(d).squareRoot()
    var offsets: [Int] = [], total = 0
    for rows in sequences { offsets.append(total); total += a.heads * rows.count * rows.count }
    var probabilities = [Float](repeating: 0, count: total)
    let mask = try dropout?.mask(site, rate: rate, count: total)
    let out = try Tensor(zeros: [q.shape[0], qw])
    probabilities.withUnsafeMutableBufferPointer { pBuffer in
        forEachAttentionUnit(sequences, a, scratch: 1) { s, rows, kv, dropped in
            let n = rows.count, start = rows.lowerBound
            for h in kv * a.group..<(kv + 1) * a.group {
                let block = pBuffer.baseAddress! + offsets[s] + h * n * n
                sgemm(false, true, m: n, n: n, k: d, alpha: scale, floats(q) + start * qw + h * d, lda: qw,
                      floats(k) + start * kw + kv * d, ldb: kw, beta: 0, block, ldc: n)
                softmaxRows(block, rows: n, cols: n) { a.visible($0, length: n) }
                var used = UnsafePointer(block)
                if let mask {
                    let base = offsets[s] + h * n * n
                    for i in 0..<(n * n) { dropped[i] = block[i] * mask[base + i] }
                    used = UnsafePointer(dropped)
                }
                sgemm(false, false, m: n, n: d, k: n, used, lda: n, floats(v) + start * kw + kv * d, ldb: kw,
                      beta: 0, floats(out) + start * qw + h * d, ldc: qw)
            }
        }
    }
    return (out, AttentionCache(q: q, k: k, v: v, probabilities: probabilities, offsets: offsets, mask: mask))
}

/// With P the probabilities and D = P * mask: dV = D^T dO, dD = dO V^T, dP = dD * mask,
/// dS = P (dP - rowsum(dP P)), dQ = scale dS K, dK = scale dS^T Q; the query heads of a
/// group add into their key/value head. Hidden entries have P = 0, so dS = 0 there.
func attentionBackward(_ dOut: Tensor, _ c: AttentionCache, shape a: AttentionShape,
                       sequences: [Range<Int>]) throws -> (dq: Tensor, dk: Tensor, dv: Tensor) {
    let d = a.headDim, qw = a.queryWidth, kw = a.keyWidth, scale = 1 / Float(d).squareRoot(), tokens = dOut.shape[0]
    let dq = try Tensor(zeros: [tokens, qw]), dk = try Tensor(zeros: [tokens, kw]), dv = try Tensor(zeros: [tokens, kw])
    c.probabilities.withUnsafeBufferPointer { pBuffer in
        forEachAttentionUnit(sequences, a, scratch: 2) { s, rows, kv, scratch in
            let n = rows.count, start = rows.lowerBound, dropped = scratch, g = scratch + n * n
            for h in kv * a.group..<(kv + 1) * a.group {
                let base = c.offsets[s] + h * n * n, p = pBuffer.baseAddress! + base
                let oq = start * qw + h * d, ok = start * kw + kv * d
                var used = p
                if let mask = c.mask {
                    for i in 0..<(n * n) { dropped[i] = p[i] * mask[base + i] }
                    used = UnsafePointer(dropped)
                }
                sgemm(true, false, m: n, n: d, k: n, used, lda: n, floats(dOut) + oq, ldb: qw, beta: 1, floats(dv) + ok, ldc: kw)
                sgemm(false, true, m: n, n: n, k: d, floats(dOut) + oq, lda: qw, floats(c.v) + ok, ldb: kw, beta: 0, g, ldc: n)
                if let mask = c.mask { for i in 0..<(n * n) { g[i] *= mask[base + i] } }
                for i in 0..<n {
                    var dot: Float = 0
                    for j in 0..<n { dot += g[i * n + j] * p[i * n + j] }
                    for j in 0..<n { g[i * n + j] = p[i * n + j] * (g[i * n + j] - dot) }
                }
                sgemm(false, false, m: n, n: d, k: n, alpha: scale, g, lda: n, floats(c.k) + ok, ldb: kw, beta: 0, floats(dq) + oq, ldc: qw)
                sgemm(true, false, m: n, n: d, k: n, alpha: scale, g, lda: n, floats(c.q) + oq, ldb: qw, beta: 1, floats(dk) + ok, ldc: kw)
            }
        }
    }
    return (dq, dk, dv)
}
