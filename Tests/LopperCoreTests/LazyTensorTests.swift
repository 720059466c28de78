import XCTest
import LopperCore

/// Fused evaluation of lazy expressions against eager evaluation with the public kernels,
/// bit for bit: random expression trees over BF16, F16 and F32 leaves of odd sizes, and
/// the DARE form that runs on the hand-fused kernel.
final class LazyTensorTests: XCTestCase {
    func bytes(_ tensor: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount)) }

    func randomTensor(_ count: Int, _ dtype: DType, seed: UInt64, spread: Float) throws -> Tensor {
        let u = try uniform([count], key: RandomKey(seed: seed, name: "input")).floats()
        return Tensor(u.map { ($0 - 0.5) * spread }, shape: [count], dtype: dtype)
    }

    /// An expression and its eager value, built side by side.
    struct Pair {
        var lazy: LazyOperand
        var eager: Tensor?     // nil for a scalar
        var scalar: Float = 0
    }

    /// A random tree of depth `depth`: leaves are the delta, a tensor, a mask or a scalar.
    func randomExpression(_ depth: Int, _ generator: inout SplitMix, base: Tensor, finetuned: Tensor,
                          other: Tensor, count: Int) throws -> Pair {
        let choice = depth == 0 ? Int(generator.next() % 3) : 3 + Int(generator.next() % 6)
        switch choice {
        case 0:
            let lazy = try LazyTensor.delta(base: base, finetuned: finetuned)
            return Pair(lazy: .lazy(lazy), eager: try delta(finetuned, base))
        case 1:
            return Pair(lazy: .tensor(other), eager: try other.converted(to: .f32))
        case 2:
            let value = Float(Int(generator.next() % 7)) / 4 - 0.75
            return Pair(lazy: .scalar(value), eager: nil, scalar: value)
        case 3, 4:
            // x * mask: masks enter only through multiplication, as in eager code.
            let x = try randomExpression(depth - 1, &generator, base: base, finetuned: finetuned, other: other, count: count)
            guard let eager = x.eager else { return x }
            let key = RandomKey(seed: generator.next(), name: "mask")
            let keep = Double(generator.next() % 100) / 100
            let mask = try LazyTensor.bernoulli([count], keep: keep, key: key)
            return Pair(lazy: .lazy(try LazyTensor.binary(.mul, x.lazy, .lazy(mask))),
                        eager: try mul(eager, try bernoulliMask([count], keep: keep, key: key)))
        case 5:
            let x = try randomExpression(depth - 1, &generator, base: base, finetuned: finetuned, other: other, count: count)
            guard let eager = x.eager, case .lazy(let inner) = x.lazy else { return x }
            let operation: LazyTensor.UnaryOperation = [.neg, .abs, .sign][Int(generator.next() % 3)]
            let reference: Tensor
            switch operation {
            case .neg: reference = try neg(eager)
            case .abs: reference = try abs(eager)
            case .sign: reference = try sign(eager)
            }
            return Pair(lazy: .lazy(try LazyTensor.unary(operation, inner)), eager: reference)
        default:
            let a = try randomExpression(depth - 1, &generator, base: base, finetuned: finetuned, other: other, count: count)
            let b = try randomExpression(depth - 1, &generator, base: base, finetuned: finetuned, other: other, count: count)
            let operation: LazyTensor.BinaryOperation = [.add, .sub, .mul, .div][Int(generator.next() % 4)]
            let reference: Tensor
            switch (a.eager, b.eager) {
            case (let x?, let y?):
                switch operation {
                case .add: reference = try add(x, y)
                case .sub: reference = try sub(x, y)
                case .mul: reference = try mul(x, y)
                default: reference = try div(x, y)
                }
            case (let x?, nil):
                switch operation {
                case .add: reference = try add(x, b.scalar)
                case .sub: reference = try sub(x, b.scalar)
                case .mul: reference = try scale(x, b.scalar)
                default: reference = try div(x, b.scalar)
                }
            case (nil, let y?):
                // As the Lua bindings do for number op tensor.
                switch operation {
                case .add: reference = try add(y, a.scalar)
                case .sub: reference = try add(try neg(y), a.scalar)
                case .mul: reference = try scale(y, a.scalar)
                default: reference = try div(Tensor([Float](repeating: a.scalar, count: count), shape: [count]), y)
                }
            case (nil, nil):
                return a
            }
            return Pair(lazy: .lazy(try LazyTensor.binary(operation, a.lazy, b.lazy)), eager: reference)
        }
    }

    func testRandomExpressionsMatchEagerEvaluationBitForBit() throws {
        var generator = SplitMix(seed: 42)
        var checked = 0
        for dtype in [DType.bf16, .f16, .f32] {
            for count in [1, 17, 2048 + 5, 65536 + 77] {
                let base = try randomTensor(count, dtype, seed: 1, spread: 2)
                let finetuned = try add(base, try randomTensor(count, .f32, seed: 2, spread: 0.05), dtype: dtype)
                let other = try randomTensor(count, dtype == .f32 ? .bf16 : .f32, seed: 3, spread: 3)
                for _ in 0..<12 {
                    let pair = try randomExpression(3, &generator, base: base, finetuned: finetuned, other: other, count: count)
                    guard case .lazy(let lazy) = pair.lazy, let eager = pair.eager else { continue }
                    XCTAssertEqual(bytes(try lazy.evaluate()), bytes(eager), "\(dtype) \(count): \(lazy.node)")
                    for output in [DeltaOutput.merged, .delta] {
                        let finished = try lazy.finish(base: base, output: output, dtype: dtype)
                        let reference = output == .merged ? try add(base, eager, dtype: dtype) : try eager.converted(to: dtype)
                        XCTAssertEqual(bytes(finished), bytes(reference), "\(dtype) \(count) \(output): \(lazy.node)")
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }

    /// `delta * mask / keep` and its variants take the hand-fused kernel, with the bits of
    /// the eager expression.
    func testDAREFormsRunFusedWithEagerBits() throws {
        for dtype in [DType.bf16, .f16, .f32] {
            for count in [3, 4099, (1 << 16) * 3 + 13] {
                let base = try randomTensor(count, dtype, seed: 5, spread: 2)
                let finetuned = try add(base, try randomTensor(count, .f32, seed: 6, spread: 0.02), dtype: dtype)
                let key = RandomKey(seed: 7, name: "w")
                let keep = 0.3
                let delta = try LazyTensor.delta(base: base, finetuned: finetuned)
                let mask = try LazyTensor.bernoulli([count], keep: keep, key: key)
                let eagerMask = try bernoulliMask([count], keep: keep, key: key)
                let eagerDelta = try LopperCore.delta(finetuned, base)
                let masked = try LazyTensor.binary(.mul, .lazy(delta), .lazy(mask))
                let forms: [(LazyTensor, Tensor)] = [
                    (masked, try mul(eagerDelta, eagerMask)),
                    (try LazyTensor.binary(.div, .lazy(masked), .scalar(Float(keep))), try div(try mul(eagerDelta, eagerMask), Float(keep))),
                    (try LazyTensor.binary(.mul, .scalar(2.5), .lazy(masked)), try scale(try mul(eagerDelta, eagerMask), 2.5)),
                    (try LazyTensor.binary(.mul, .lazy(try LazyTensor.binary(.div, .lazy(delta), .scalar(0.7))), .lazy(mask)),
                     try mul(try div(eagerDelta, 0.7), eagerMask)),
                    (try LazyTensor.binary(.mul, .lazy(mask), .lazy(try LazyTensor.binary(.mul, .lazy(delta), .scalar(-3)))),
                     try mul(try scale(eagerDelta, -3), eagerMask)),
                ]
                for (index, (lazy, eager)) in forms.enumerated() {
                    XCTAssertNotNil(lazy.dareRescale(base: base), "form \(index) should run fused")
                    for output in [DeltaOutput.merged, .delta] {
                        let finished = try lazy.finish(base: base, output: output, dtype: dtype)
                        let reference = output == .merged ? try add(base, eager, dtype: dtype) : try eager.converted(to: dtype)
                        XCTAssertEqual(bytes(finished), bytes(reference), "form \(index) \(dtype) \(count) \(output)")
                    }
                }
                // A negative factor after the mask would turn dropped +0 into -0: not fused.
                let negative = try LazyTensor.binary(.mul, .lazy(masked), .scalar(-1))
                XCTAssertNil(negative.dareRescale(base: base))
                XCTAssertEqual(bytes(try negative.finish(base: base, output: .delta, dtype: .f32)),
                               bytes(try scale(try mul(eagerDelta, eagerMask), -1)))
            }
        }
    }

    /// |delta| (the magnitude score) runs as one kernel with the block program's bits.
    func testMagnitudeOfTheDeltaEvaluatesWithEagerBits() throws {
        for dtype in [DType.bf16, .f16, .f32] {
            for count in [1, 17, (1 << 16) + 5] {
                var b = try randomTensor(count, dtype, seed: 9, spread: 2).floats()
                if count > 10 { b[3] = .nan; b[4] = .infinity; b[5] = -0.0 }
                let base = Tensor(b, shape: [count], dtype: dtype)
                let finetuned = try add(base, try randomTensor(count, .f32, seed: 10, spread: 0.02), dtype: dtype)
                let lazy = try LazyTensor.unary(.abs, try LazyTensor.delta(base: base, finetuned: finetuned))
                XCTAssertEqual(bytes(try lazy.evaluate()), bytes(try abs(try delta(finetuned, base))), "\(dtype) \(count)")
            }
        }
    }

    func testMasksCombineOnlyByMultiplicationAndShapesMustAgree() throws {
        let base = Tensor([1, 2, 3], shape: [3]), finetuned = Tensor([2, 2, 5], shape: [3])
        let delta = try LazyTensor.delta(base: base, finetuned: finetuned)
        let mask = try LazyTensor.bernoulli([3], keep: 0.5, key: RandomKey(seed: 1, name: "m"))
        XCTAssertThrowsError(try LazyTensor.binary(.add, .lazy(delta), .lazy(mask)))
        XCTAssertThrowsError(try LazyTensor.binary(.mul, .lazy(mask), .lazy(mask)))
        XCTAssertThrowsError(try LazyTensor.binary(.add, .lazy(delta), .tensor(Tensor([1, 2], shape: [2]))))
        XCTAssertThrowsError(try LazyTensor.bernoulli([3], keep: 1.5, key: RandomKey(seed: 1, name: "m")))
        XCTAssertEqual(try mask.evaluate().dtype, .bool)
        XCTAssertEqual(try delta.evaluate().floats(), [1, 0, 2])
        // Multiplying by a BOOL mask zeroes to +0, whatever the sign.
        let negative = Tensor([-1, -2, 3], shape: [3]), none = Tensor([0, 0, 1], shape: [3], dtype: .bool)
        XCTAssertEqual(try mul(negative, none).floats().map(\.bitPattern), [0, 0, Float(3).bitPattern])
    }
}
