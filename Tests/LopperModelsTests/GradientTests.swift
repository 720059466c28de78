import Foundation
import LopperCore
@testable import LopperModels
import XCTest

/// Every reverse-mode operation against central finite differences of a scalar loss
/// `sum(output * R)` (R fixed random), computed in Double over F32 forwards.
final class GradientTests: XCTestCase {
    /// Reproducible values in [-scale, scale).
    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        (try! uniform([count], key: RandomKey(seed: seed, name: "gradient test"))).floats().map { ($0 * 2 - 1) * scale }
    }

    static func tensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        Tensor(random(shape.reduce(1, *), seed: seed, scale: scale), shape: shape)
    }

    static func parameter(_ name: String, _ shape: [Int], seed: UInt64, scale: Float = 1) throws -> Parameter {
        try Parameter(name: name, value: tensor(shape, seed: seed, scale: scale))
    }

    /// sum(t * r) in Double.
    static func dot(_ t: Tensor, _ r: Tensor) -> Double {
        zip(t.floats(), r.floats()).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Compares `analytic` with central differences of `loss` in every entry of `values`.
    func assertGradient(_ label: String, _ values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
                        step: Float = 1e-2, tolerance: Double = 2e-3, loss: () throws -> Double,
                        file: StaticString = #filePath, line: UInt = #line) rethrows {
        XCTAssertEqual(analytic.count, count, label, file: file, line: line)
        var worst = 0.0, scale = 0.0
        for i in 0..<count {
            let saved = values[i]
            values[i] = saved + step
            let up = try loss()
            values[i] = saved - step
            let down = try loss()
            values[i] = saved
            let numeric = (up - down) / (2 * Double(step))
            worst = max(worst, abs(numeric - Double(analytic[i])))
            scale = max(scale, abs(numeric))
        }
        XCTAssertGreaterThan(scale, 1e-3, "\(label): the loss must depend on these values", file: file, line: line)
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(label): max |numeric - analytic| \(worst), max |numeric| \(scale)",
                                 file: file, line: line)
    }

    func testLinear() throws {
        let x = Self.tensor([5, 6], seed: 1), w = try Self.parameter("w", [4, 6], seed: 2), b = try Self.parameter("b", [4], seed: 3)
        let r = Self.tensor([5, 4], seed: 4)
        let loss = { Self.dot(try linearForward(x, w, b), r) }
        let dx = try linearBackward(r, input: x, w, b)
        try assertGradient("linear dx", floats(x), count: x.count, analytic: dx.floats(), loss: loss)
        try assertGradient("linear dW", w.values, count: w.count, analytic: w.grad.floats(), loss: loss)
        try assertGradient("linear db", b.values, count: b.count, analytic: b.grad.floats(), loss: loss)
    }

    func testEmbeddingLookupWithRepeatedIds() throws {
        let table = try Self.parameter("table", [7, 3], seed: 5), ids = [2, 5, 2, 0, 6, 2]
        let r = Self.tensor([ids.count, 3], seed: 6)
        embeddingBackward(r, ids: ids, table)
        try assertGradient("embedding", table.values, count: table.count, analytic: table.grad.floats()) {
            Self.dot(try embed(table.value, ids), r)
        }
        XCTAssertEqual(Array(table.grad.floats()[3..<6]), [0, 0, 0], "row 1 is never looked up")
    }

    func testLayerNorm() throws {
        let x = Self.tensor([4, 8], seed: 7, scale: 2), w = try Self.parameter("w", [8], seed: 8), b = try Self.parameter("b", [8], seed: 9)
        let r = Self.tensor([4, 8], seed: 10)
        let (_, cache) = try layerNormForward(x, w, b, eps: 1e-5)
        let dx = try layerNormBackward(r, cache, w, b)
        let loss = { Self.dot(try layerNormForward(x, w, b, eps: 1e-5).0, r) }
        try assertGradient("layer norm dx", floats(x), count: x.count, analytic: dx.floats(), loss: loss)
        try assertGradient("layer norm dw", w.values, count: w.count, analytic: w.grad.floats(), loss: loss)
        try assertGradient("layer norm db", b.values, count: b.count, analytic: b.grad.floats(), loss: loss)
    }

    func testActivations() throws {
        let x = Self.tensor([3, 10], seed: 11, scale: 3), r = Self.tensor([3, 10], seed: 12)
        for activation in [Activation.geluErf, .geluTanh, .silu, .quickGelu] {
            let dx = try activation.backward(r, input: x)
            try assertGradient("\(activation)", floats(x), count: x.count, analytic: dx.floats(), step: 1e-3) {
                Self.dot(try activation.forward(x), r)
            }
        }
        let dx = try tanhBackward(r, output: try tanhForward(x))
        try assertGradient("tanh", floats(x), count: x.count, analytic: dx.floats(), step: 1e-3) { Self.dot(try tanhForward(x), r) }
    }

    func testCrossEntropy() throws {
        let logits = Self.tensor([4, 3], seed: 13, scale: 3), labels = [2, 0, 1, 1]
        let (loss, grad) = try crossEntropy(logits, labels: labels)
        // by hand: mean of log(sum exp) - logit[label]
        let v = logits.floats()
        let expected = (0..<4).reduce(0.0) { total, r in
            let row = (0..<3).map { Double(v[r * 3 + $0]) }
            return total + log(row.map(exp).reduce(0, +)) - row[labels[r]]
        } / 4
        XCTAssertEqual(loss, expected, accuracy: 1e-6)
        try assertGradient("cross-entropy", floats(logits), count: logits.count, analytic: grad.floats(), step: 1e-3) {
            try crossEntropy(logits, labels: labels).loss
        }
    }

    /// Two ragged sequences packed (lengths 3 and 5, the padding mask), 2 heads of 4, with and without dropout.
    func testAttention() throws {
        let sequences = [0..<3, 3..<8], heads = 2, d = 4
        for dropout in [nil, DropoutStream(seed: 9, step: 3)] {
            let q = Self.tensor([8, 8], seed: 14), k = Self.tensor([8, 8], seed: 15), v = Self.tensor([8, 8], seed: 16)
            let r = Self.tensor([8, 8], seed: 17)
            let shape = AttentionShape(heads: heads, kvHeads: heads, headDim: d)
            let forward = { try attentionForward(q: q, k: k, v: v, shape: shape, sequences: sequences,
                                                 dropout: dropout, rate: 0.3, site: "test") }
            let (_, cache) = try forward()
            if dropout != nil { XCTAssertNotNil(cache.mask) }
            let (dq, dk, dv) = try attentionBackward(r, cache, shape: shape, sequences: sequences)
            let loss = { Self.dot(try forward().0, r) }
            let label = dropout == nil ? "attention" : "attention with dropout"
            try assertGradient(label + " dq", floats(q), count: q.count, analytic: dq.floats(), step: 1e-3, loss: loss)
            try assertGradient(label + " dk", floats(k), count: k.count, analytic: dk.floats(), step: 1e-3, loss: loss)
            try assertGradient(label + " dv", floats(v), count: v.count, analytic: dv.floats(), step: 1e-3, loss: loss)
            // the padding mask: the first sequence's output ignores the second's values
            let before = try forward().0.floats()
            floats(v)[7 * 8] += 5
            XCTAssertEqual(Array(try forward().0.floats()[0..<24]), Array(before[0..<24]))
        }
    }

    func testRMSNorm() throws {
        let x = Self.tensor([4, 8], seed: 20, scale: 2), w = try Self.parameter("w", [8], seed: 21)
        let r = Self.tensor([4, 8], seed: 22)
        let (_, cache) = try rmsNormForward(x, w, eps: 1e-5)
        let dx = try rmsNormBackward(r, cache, w)
        let loss = { Self.dot(try rmsNormForward(x, w, eps: 1e-5).0, r) }
        try assertGradient("rms norm dx", floats(x), count: x.count, analytic: dx.floats(), step: 1e-3, loss: loss)
        try assertGradient("rms norm dw", w.values, count: w.count, analytic: w.grad.floats(), step: 1e-3, loss: loss)
    }

    func testGatedMLP() throws {
        let gate = Self.tensor([3, 7], seed: 23, scale: 3), up = Self.tensor([3, 7], seed: 24), r = Self.tensor([3, 7], seed: 25)
        let (dGate, dUp) = try Activation.silu.gatedBackward(r, gate: gate, up: up)
        let loss = { Self.dot(try Activation.silu.gatedForward(gate, up), r) }
        try assertGradient("swiglu d gate", floats(gate), count: gate.count, analytic: dGate.floats(), step: 1e-3, loss: loss)
        try assertGradient("swiglu d up", floats(up), count: up.count, analytic: dUp.floats(), step: 1e-3, loss: loss)
    }

    func testRoPE() throws {
        var rotary = RotaryTables(RopeConfig(theta: 10000, kind: .plain), headDim: 8)
        rotary.ensure(positions: 6)
        let sequences = [0..<2, 2..<8], x = Self.tensor([8, 16], seed: 26), r = Self.tensor([8, 16], seed: 27)
        let dx = try r.clone()
        rotary.applyBackward(dx, heads: 2, sequences: sequences)
        try assertGradient("rope", floats(x), count: x.count, analytic: dx.floats(), step: 1e-2) {
            let y = try x.clone()
            rotary.apply(y, heads: 2, sequences: sequences)
            return Self.dot(y, r)
        }
    }

    /// Grouped-query causal attention (4 query heads on 2 key/value heads) with a sliding window of 3.
    func testCausalGroupedAttentionWithWindow() throws {
        let sequences = [0..<2, 2..<8], shape = AttentionShape(heads: 4, kvHeads: 2, headDim: 4, causal: true, window: 3)
        let q = Self.tensor([8, 16], seed: 28), k = Self.tensor([8, 8], seed: 29), v = Self.tensor([8, 8], seed: 30)
        let r = Self.tensor([8, 16], seed: 31)
        let forward = { try attentionForward(q: q, k: k, v: v, shape: shape, sequences: sequences, dropout: nil, rate: 0, site: "t") }
        let (dq, dk, dv) = try attentionBackward(r, try forward().1, shape: shape, sequences: sequences)
        let loss = { Self.dot(try forward().0, r) }
        try assertGradient("causal attention dq", floats(q), count: q.count, analytic: dq.floats(), step: 1e-3, loss: loss)
        try assertGradient("causal attention dk", floats(k), count: k.count, analytic: dk.floats(), step: 1e-3, loss: loss)
        try assertGradient("causal attention dv", floats(v), count: v.count, analytic: dv.floats(), step: 1e-3, loss: loss)
        // token 3 of the second sequence (row 5) sees rows 3...5 only: the future and beyond the window do not matter
        let before = try forward().0.floats()
        floats(v)[6 * 8] += 5; floats(v)[2 * 8] += 5
        XCTAssertEqual(Array(try forward().0.floats()[(5 * 16)..<(6 * 16)]), Array(before[(5 * 16)..<(6 * 16)]))
    }

    /// Attention runs its (sequence, key/value head) units on several threads: the same bits
    /// on one thread and on four, with grouped heads, sequences of several lengths and dropout.
    func testAttentionIsTheSameOnAnyThreadCount() throws {
        let sequences = [0..<5, 5..<6, 6..<16, 16..<16, 16..<23], shape = AttentionShape(heads: 6, kvHeads: 3, headDim: 4)
        let q = Self.tensor([23, 24], seed: 40), k = Self.tensor([23, 12], seed: 41), v = Self.tensor([23, 12], seed: 42)
        let r = Self.tensor([23, 24], seed: 43)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var results: [[[Float]]] = []
        for threads in [1, 4] {
            Parallel.threads = threads
            let (out, cache) = try attentionForward(q: q, k: k, v: v, shape: shape, sequences: sequences,
                                                    dropout: DropoutStream(seed: 3, step: 1), rate: 0.2, site: "t")
            let (dq, dk, dv) = try attentionBackward(r, cache, shape: shape, sequences: sequences)
            results.append([out.floats(), cache.probabilities, dq.floats(), dk.floats(), dv.floats()])
        }
        XCTAssertEqual(results[0], results[1])
    }

    func testNextTokenLoss() throws {
        let packed = PackedBatch([[3, 1, 4], [1], [5, 9]]), logits = Self.tensor([6, 10], seed: 32, scale: 2)
        let (loss, grad, predicted) = try nextTokenLoss(logits, packed: packed)
        XCTAssertEqual(predicted, 3)
        let v = logits.floats()
        let expected = [(0, 1), (1, 4), (4, 9)].reduce(0.0) { total, pair in
            let row = (0..<10).map { Double(v[pair.0 * 10 + $0]) }
            return total + log(row.map(exp).reduce(0, +)) - row[pair.1]
        } / 3
        XCTAssertEqual(loss, expected, accuracy: 1e-6)
        try assertGradient("next-token loss", floats(logits), count: logits.count, analytic: grad.floats(), step: 1e-3) {
            try nextTokenLoss(logits, packed: packed).loss
        }
    }

    /// Masks keyed by (seed, step, site): reproducible, different per step and site, at the rate asked.
    func testDropoutMasks() throws {
        let a = DropoutStream(seed: 5, step: 1), count = 20_000
        let mask = try XCTUnwrap(try a.mask("layer 0 output", rate: 0.1, count: count))
        XCTAssertEqual(mask, try a.mask("layer 0 output", rate: 0.1, count: count))
        XCTAssertNotEqual(mask, try DropoutStream(seed: 5, step: 2).mask("layer 0 output", rate: 0.1, count: count))
        XCTAssertNotEqual(mask, try a.mask("layer 1 output", rate: 0.1, count: count))
        XCTAssertNotEqual(mask, try DropoutStream(seed: 6, step: 1).mask("layer 0 output", rate: 0.1, count: count))
        XCTAssertEqual(Set(mask), [0, Float(1 / 0.9)])
        let dropped = mask.filter { $0 == 0 }.count
        // binomial(20000, 0.1): sd 42; 5 sd bounds
        XCTAssertEqual(Double(dropped), 2000, accuracy: 212)
        XCTAssertNil(try a.mask("x", rate: 0, count: 10))
    }
}
