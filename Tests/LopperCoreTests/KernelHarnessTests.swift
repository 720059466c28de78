import XCTest
import LopperCore

/// The ggml-style harness: every elementwise kernel, for every compute dtype and mixed
/// operands, over sizes with odd tails and several chunks, against a scalar reference
/// written here (loadScalar widening, f32 arithmetic, storeScalar rounding).
final class KernelHarnessTests: XCTestCase {
    static let computeTypes: [DType] = [.f32, .f16, .bf16, .f64]
    static let smallSizes = [0, 1, 7, 15, 16, 17, 63, 65, 1023, 4099]
    static let largeSizes = [70001, 140_007]

    typealias Binary = (name: String, run: (Tensor, Tensor, DType) throws -> Tensor, reference: (Float, Float) -> Float)
    typealias Unary = (name: String, run: (Tensor, DType) throws -> Tensor, reference: (Float) -> Float)

    let binaries: [Binary] = [
        ("add", { try add($0, $1, dtype: $2) }, { $0 + $1 }),
        ("sub", { try sub($0, $1, dtype: $2) }, { $0 - $1 }),
        ("mul", { try mul($0, $1, dtype: $2) }, { $0 * $1 }),
        ("div", { try div($0, $1, dtype: $2) }, { $0 / $1 }),
        ("axpy", { try axpy(-0.37, $0, $1, dtype: $2) }, { -0.37 * $0 + $1 }),
        ("delta", { try delta($0, $1, dtype: $2) }, { $0 - $1 }),
    ]

    let unaries: [Unary] = [
        ("add scalar", { try add($0, 1.25, dtype: $1) }, { $0 + 1.25 }),
        ("sub scalar", { try sub($0, -3.5, dtype: $1) }, { $0 - -3.5 }),
        ("mul scalar", { try mul($0, 0.1, dtype: $1) }, { $0 * 0.1 }),
        ("div scalar", { try div($0, 3, dtype: $1) }, { $0 / 3 }),
        ("scale", { try scale($0, -7.75, dtype: $1) }, { $0 * -7.75 }),
        ("neg", { try neg($0, dtype: $1) }, { -$0 }),
        ("abs", { try abs($0, dtype: $1) }, { Swift.abs($0) }),
        ("sign", { try sign($0, dtype: $1) }, { $0.isNaN ? $0 : ($0 > 0 ? 1 : ($0 < 0 ? -1 : 0)) }),
    ]

    func testBinaryKernelsAllDTypePairs() throws {
        var generator = SplitMix(seed: 11)
        for size in Self.smallSizes {
            let shape = randomShape(size, &generator)
            for typeA in Self.computeTypes {
                let a = randomTensor(shape, typeA, &generator)
                for typeB in Self.computeTypes {
                    let b = randomTensor(shape, typeB, &generator)
                    for output in Self.computeTypes {
                        for op in binaries {
                            try checkBinary(op, a, b, output)
                        }
                    }
                }
            }
        }
    }

    func testBinaryKernelsLargeTensors() throws {
        var generator = SplitMix(seed: 12)
        let combinations: [(DType, DType, DType)] = [(.f32, .f32, .f32), (.bf16, .bf16, .bf16), (.bf16, .bf16, .f32),
                                                     (.f32, .bf16, .bf16), (.f16, .f32, .bf16), (.f64, .bf16, .f16)]
        for size in Self.largeSizes {
            let shape = randomShape(size, &generator)
            for (typeA, typeB, output) in combinations {
                let a = randomTensor(shape, typeA, &generator), b = randomTensor(shape, typeB, &generator)
                for op in binaries { try checkBinary(op, a, b, output) }
            }
        }
    }

    func testUnaryKernels() throws {
        var generator = SplitMix(seed: 13)
        for size in Self.smallSizes + Self.largeSizes {
            let shape = randomShape(size, &generator)
            for input in Self.computeTypes {
                let a = randomTensor(shape, input, &generator)
                for output in Self.computeTypes where size < 70000 || input == output || output == .f32 {
                    for op in unaries {
                        let got = try op.run(a, output)
                        let expected = Tensor(a.floats().map(op.reference), shape: shape, dtype: output)
                        assertSameValues(got, expected, "\(op.name) \(input) -> \(output), shape \(shape)")
                    }
                }
            }
        }
    }

    func testComparisons() throws {
        var generator = SplitMix(seed: 14)
        let comparisons: [(String, (Tensor, Tensor) throws -> Tensor, (Tensor, Float) throws -> Tensor, (Float, Float) -> Bool)] = [
            ("greater", { try greater($0, $1) }, { try greater($0, $1) }, { $0 > $1 }),
            ("greaterEqual", { try greaterEqual($0, $1) }, { try greaterEqual($0, $1) }, { $0 >= $1 }),
            ("less", { try less($0, $1) }, { try less($0, $1) }, { $0 < $1 }),
            ("lessEqual", { try lessEqual($0, $1) }, { try lessEqual($0, $1) }, { $0 <= $1 }),
            ("equal", { try equal($0, $1) }, { try equal($0, $1) }, { $0 == $1 }),
            ("notEqual", { try notEqual($0, $1) }, { try notEqual($0, $1) }, { $0 != $1 }),
        ]
        for size in Self.smallSizes + [70001] {
            let shape = randomShape(size, &generator)
            for typeA in Self.computeTypes {
                // Few distinct values so that equality happens often.
                let a = randomTensor(shape, typeA, &generator, distinct: 5)
                for typeB in Self.computeTypes where size < 70000 || typeA == typeB {
                    let b = randomTensor(shape, typeB, &generator, distinct: 5)
                    let (x, y) = (a.floats(), b.floats())
                    for (name, tensorForm, scalarForm, reference) in comparisons {
                        let got = try tensorForm(a, b)
                        XCTAssertEqual(got.dtype, .bool)
                        assertSameValues(got, Tensor(zip(x, y).map { reference($0, $1) ? 1 : 0 }, shape: shape, dtype: .bool),
                                         "\(name) \(typeA) vs \(typeB), shape \(shape)")
                        let scalar: Float = 1
                        assertSameValues(try scalarForm(a, scalar), Tensor(x.map { reference($0, scalar) ? 1 : 0 }, shape: shape, dtype: .bool),
                                         "\(name) \(typeA) vs scalar, shape \(shape)")
                    }
                }
            }
        }
    }

    func testSelect() throws {
        var generator = SplitMix(seed: 15)
        for size in Self.smallSizes + [70001] {
            let shape = randomShape(size, &generator)
            for maskType in [DType.bool, .f32, .bf16, .f16, .f64] {
                let mask = randomTensor(shape, maskType == .bool ? .f32 : maskType, &generator, distinct: 2)
                let maskTensor = maskType == .bool ? try mask.converted(to: .bool) : mask
                let conditions = maskTensor.floats().map { $0 != 0 }
                for (typeA, typeB, output) in [(DType.f32, DType.f32, DType.f32), (.bf16, .f16, .bf16), (.f64, .bf16, .f32), (.f16, .f16, .f64)] {
                    let a = randomTensor(shape, typeA, &generator), b = randomTensor(shape, typeB, &generator)
                    let (x, y) = (a.floats(), b.floats())
                    let expected = (0..<size).map { conditions[$0] ? x[$0] : y[$0] }
                    assertSameValues(try select(maskTensor, a, b, dtype: output), Tensor(expected, shape: shape, dtype: output),
                                     "select mask \(maskType), \(typeA)/\(typeB) -> \(output)")
                    let expectedScalar = (0..<size).map { conditions[$0] ? x[$0] : -2.5 }
                    assertSameValues(try select(maskTensor, a, -2.5, dtype: output), Tensor(expectedScalar, shape: shape, dtype: output),
                                     "select scalar mask \(maskType), \(typeA) -> \(output)")
                }
            }
        }
        // NaN in a float mask counts as true (nonzero).
        let picked = try select(Tensor([.nan, 0, -0.0, 2]), Tensor([1, 2, 3, 4]), 9)
        XCTAssertEqual(picked.floats(), [1, 9, 9, 4])
    }

    func testHandChecked() throws {
        let a = Tensor([1, -2, 0.5, .infinity], shape: [2, 2], dtype: .bf16)
        let b = Tensor([3, 4, -0.5, 1], shape: [2, 2])
        XCTAssertEqual(try add(a, b).floats(), [4, 2, 0, .infinity])
        XCTAssertEqual(try delta(a, b, dtype: .bf16).floats(), [-2, -6, 1, .infinity])
        XCTAssertEqual(try axpy(2, a, b).floats(), [5, 0, 0.5, .infinity])
        XCTAssertEqual(try sign(Tensor([-3, 0, 2, -0.0])).floats(), [-1, 0, 1, 0])
        XCTAssertTrue(try sign(Tensor([.nan])).floats()[0].isNaN)
        XCTAssertEqual(try greater(a, 0.5).floats(), [1, 0, 0, 1])
        XCTAssertEqual(try notEqual(Tensor([.nan, 1]), Tensor([.nan, 1])).floats(), [1, 0])
        XCTAssertEqual(try div(Tensor([1, -1, 0]), 0).floats()[0...1], [.infinity, -.infinity])
        // 1 + 2^-8 is a BF16 tie: the output rounds to even.
        XCTAssertEqual(try add(Tensor([1]), 0x1p-8, dtype: .bf16).floats(), [1])
    }

    func testErrorsNameTheOperationAndShapes() throws {
        let a = try Tensor(zeros: [4, 3]), b = try Tensor(zeros: [3, 4])
        XCTAssertThrowsError(try add(a, b)) { error in
            XCTAssertEqual("\(error)", "add: shape [4,3] vs [3,4]")
        }
        XCTAssertThrowsError(try delta(a, b)) { XCTAssertEqual("\($0)", "delta: shape [4,3] vs [3,4]") }
        XCTAssertThrowsError(try greater(a, b)) { XCTAssertEqual("\($0)", "greater: shape [4,3] vs [3,4]") }
        XCTAssertThrowsError(try select(Tensor(zeros: [12], dtype: .bool), a, 0)) { XCTAssertEqual("\($0)", "select: shape [12] vs [4,3]") }
        let integers = try Tensor(zeros: [4, 3], dtype: .i32)
        XCTAssertThrowsError(try add(a, integers)) { XCTAssertEqual("\($0)", "add: dtype I32 is not supported (use F32, F16, BF16 or F64)") }
        XCTAssertThrowsError(try scale(a, 2, dtype: .bool))
        XCTAssertThrowsError(try neg(integers))
    }

    // MARK: - Helpers

    private func checkBinary(_ op: Binary, _ a: Tensor, _ b: Tensor, _ output: DType) throws {
        let got = try op.run(a, b, output)
        let (x, y) = (a.floats(), b.floats())
        let expected = Tensor(zip(x, y).map { op.reference($0, $1) }, shape: a.shape, dtype: output)
        assertSameValues(got, expected, "\(op.name) \(a.dtype), \(b.dtype) -> \(output), shape \(a.shape)")
    }
}

/// Asserts equal shape, dtype and values element by element (NaN equals NaN; -0 and +0
/// must match by bits too).
func assertSameValues(_ got: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    guard got.shape == expected.shape, got.dtype == expected.dtype else {
        XCTFail("\(message): got \(got.shape) \(got.dtype), expected \(expected.shape) \(expected.dtype)", file: file, line: line)
        return
    }
    for index in 0..<got.count {
        let u = got.loadScalar(at: index), v = expected.loadScalar(at: index)
        if !(u.bitPattern == v.bitPattern || (u.isNaN && v.isNaN)) {
            XCTFail("\(message): element \(index) is \(u), expected \(v)", file: file, line: line)
            return
        }
    }
}

/// A random shape with `count` elements: 1-D, or 2-D when `count` factors.
func randomShape(_ count: Int, _ generator: inout SplitMix) -> [Int] {
    let divisors = (1...Swift.max(1, Int(Double(count).squareRoot()))).filter { count % $0 == 0 }
    guard count > 1, generator.unit() < 0.6, let rows = divisors.randomElement(using: &generator) else { return [count] }
    return [rows, count / rows]
}

/// Random values in [-4, 4] (or `distinct` levels), with about 3% specials: NaN, ±Inf,
/// ±0, huge, tiny and subnormal values.
func randomTensor(_ shape: [Int], _ dtype: DType, _ generator: inout SplitMix, distinct: Int? = nil) -> Tensor {
    let count = shape.reduce(1, *)
    let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 3e38, -1e20, 1e-30, 1e-40, 65504, 70000, 6e-8]
    let values: [Float] = (0..<count).map { _ in
        if let distinct { return Float(generator.int(below: distinct)) - Float(distinct / 2) }
        if generator.unit() < 0.03 { return specials[generator.int(below: specials.count)] }
        return generator.float(in: -4...4)
    }
    return Tensor(values, shape: shape, dtype: dtype)
}

extension SplitMix: RandomNumberGenerator {}
