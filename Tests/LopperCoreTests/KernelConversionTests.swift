import XCTest
import LopperCore

/// The SIMD conversions against the scalar references in Half.swift and Swift's Float16,
/// exhaustively for the 16-bit formats and over rounding-critical f32 bit patterns.
final class KernelConversionTests: XCTestCase {
    /// Every BF16 and F16 bit pattern widens to the scalar reference's bits (NaN payloads included).
    func testEvery16BitPatternWidens() {
        let patterns = (0...0xFFFF).map { UInt16($0) }
        for (dtype, reference) in [(DType.bf16, bf16ToFloat), (DType.f16, { Float(Float16(bitPattern: $0)) })] as [(DType, (UInt16) -> Float)] {
            var widened = [Float](repeating: 0, count: patterns.count)
            patterns.withUnsafeBytes { source in
                widened.withUnsafeMutableBufferPointer { target in
                    loadFloats(source.baseAddress!, dtype: dtype, into: target.baseAddress!, count: patterns.count)
                }
            }
            var failures = 0
            for (index, bits) in patterns.enumerated() {
                let expected = reference(bits)
                let got = widened[index]
                let same = expected.isNaN ? (got.isNaN && got.sign == expected.sign && quietPayload(got) == quietPayload(expected))
                                          : got.bitPattern == expected.bitPattern
                if !same {
                    failures += 1
                    if failures < 5 { XCTFail("\(dtype) 0x\(String(bits, radix: 16)): got \(got) expected \(expected)") }
                }
            }
            XCTAssertEqual(failures, 0, "\(dtype) widening failures")
        }
    }

    /// f32 -> BF16/F16 rounding for ties, neighbours of ties, subnormals, NaN, Inf, max values,
    /// every exponent with edge mantissas, and many random patterns.
    /// `addingZero` (a copy with a check) gives `add(x, 0)`'s bits for every 16-bit pattern,
    /// in order and shuffled so that -0, Inf and NaN share runs with ordinary values, and
    /// for lengths that end inside a run.
    func testAddingZeroMatchesTheGeneralKernel() throws {
        var generator = SystemRandomNumberGenerator()
        let ordered = (0...0xFFFF).map { UInt16($0) }
        for dtype in [DType.bf16, .f16, .f32] {
            for patterns in [ordered, ordered.shuffled(using: &generator), Array(ordered[0x7F00..<0x7F8B])] {
                let count = dtype == .f32 ? patterns.count / 2 : patterns.count
                let tensor = try Tensor(uninitialized: [count], dtype: dtype)
                patterns.withUnsafeBytes { tensor.data.copyMemory(from: $0.baseAddress!, byteCount: count * dtype.byteSize) }
                let fast = try addingZero(tensor), general = try add(tensor, 0, dtype: dtype)
                XCTAssertEqual(fast.dtype, dtype)
                XCTAssertEqual(Array(UnsafeRawBufferPointer(start: fast.data, count: fast.byteCount)),
                               Array(UnsafeRawBufferPointer(start: general.data, count: general.byteCount)), "\(dtype)")
            }
        }
    }

    func testNarrowingRoundsToNearestEven() {
        let patterns = narrowingPatterns()
        for dtype in [DType.bf16, .f16] {
            var narrowed = [UInt16](repeating: 0, count: patterns.count)
            let floats = patterns.map { Float(bitPattern: $0) }
            floats.withUnsafeBufferPointer { source in
                narrowed.withUnsafeMutableBytes { target in
                    storeFloats(source.baseAddress!, into: target.baseAddress!, dtype: dtype, count: floats.count)
                }
            }
            var failures = 0
            for (index, value) in floats.enumerated() {
                let got = narrowed[index]
                let ok: Bool
                if dtype == .bf16 {
                    ok = got == floatToBF16(value)
                } else if value.isNaN {
                    // F16 NaN: sign kept, quiet bit set, top payload bits kept.
                    let bits = value.bitPattern
                    let expected = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000) | 0x7E00 | UInt16(truncatingIfNeeded: (bits >> 13) & 0x1FF)
                    ok = got == expected
                } else {
                    ok = got == Float16(value).bitPattern
                }
                if !ok {
                    failures += 1
                    if failures < 5 { XCTFail("\(dtype) \(value) (0x\(String(value.bitPattern, radix: 16))): got 0x\(String(got, radix: 16))") }
                }
            }
            XCTAssertEqual(failures, 0, "\(dtype) narrowing failures of \(floats.count)")
        }
    }

    /// Hand-checked values: ties to even, overflow to Inf, the smallest subnormals, NaN kept.
    func testNarrowingKnownValues() throws {
        let values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 65504, 65519.99, 65520, .greatestFiniteMagnitude,
                               0x1p-24, 0x1p-25, 0x1.8p-25, -0.0, .nan, -.infinity]
        let bf16 = try Tensor(values).converted(to: .bf16)
        let f16 = try Tensor(values).converted(to: .f16)
        let b = bf16.data.assumingMemoryBound(to: UInt16.self), h = f16.data.assumingMemoryBound(to: UInt16.self)
        XCTAssertEqual(b[0], 0x3F80); XCTAssertEqual(b[1], 0x3F82)
        XCTAssertEqual(b[5], 0x7F80, "max float rounds up to Inf in BF16")
        XCTAssertEqual(h[2], 0x7BFF); XCTAssertEqual(h[3], 0x7BFF); XCTAssertEqual(h[4], 0x7C00)
        XCTAssertEqual(h[5], 0x7C00)
        XCTAssertEqual(h[6], 0x0001, "2^-24 is the smallest F16 subnormal")
        XCTAssertEqual(h[7], 0x0000, "2^-25 ties to even zero")
        XCTAssertEqual(h[8], 0x0001, "1.5 * 2^-25 rounds up")
        XCTAssertEqual(h[9], 0x8000); XCTAssertEqual(h[11], 0xFC00); XCTAssertEqual(b[11], 0xFF80)
        XCTAssertTrue(bf16ToFloat(b[10]).isNaN); XCTAssertTrue(f16ToFloat(h[10]).isNaN)
    }

    /// Tensor conversions between every pair of computable dtypes match the scalar path.
    func testTensorConversionsBetweenDTypes() throws {
        var generator = SplitMix(seed: 7)
        for count in [0, 1, 15, 17, 1023, 70001] {
            let values = (0..<count).map { _ in generator.float(in: -70000...70000) * (generator.unit() < 0.1 ? 1e-6 : 1) }
            for source in [DType.f32, .f16, .bf16, .f64, .bool] {
                let input = Tensor(values, dtype: source)
                for target in [DType.f32, .f16, .bf16, .f64, .bool] {
                    let output = try input.converted(to: target)
                    XCTAssertEqual(output.shape, input.shape)
                    let reference = Tensor(input.floats(), dtype: target)
                    assertSameBytes(output, reference, "\(source) -> \(target), \(count) elements")
                }
            }
        }
        XCTAssertThrowsError(try Tensor([1]).converted(to: .f8e4m3))
    }

    private func quietPayload(_ value: Float) -> UInt32 { value.bitPattern & 0x003F_FFFF | 0x0040_0000 }

    private func narrowingPatterns() -> [UInt32] {
        var patterns: [UInt32] = [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000,
                                  0x7F80_0001, 0xFF80_0001, 0x7FBF_FFFF, 0x7FFF_FFFF, 0x7F7F_FFFF, 0xFF7F_FFFF,
                                  0x0000_0001, 0x0080_0000, 0x007F_FFFF]
        for sign: UInt32 in [0, 0x8000_0000] {
            for exponent: UInt32 in 0...255 {
                // Mantissas around the BF16 (bit 16) and F16 (bit 13) rounding points.
                for mantissa: UInt32 in [0, 1, 0x7FFF, 0x8000, 0x8001, 0x1_0000, 0x1_7FFF, 0x1_8000, 0x1_8001,
                                         0xFFF, 0x1000, 0x1001, 0x2FFF, 0x3000, 0x3001, 0x7F_E000, 0x7F_F000,
                                         0x7F_EFFF, 0x7F_F001, 0x7F_FFFF, 0x40_0000, 0x3F_FFFF] {
                    patterns.append(sign | exponent << 23 | mantissa)
                }
            }
        }
        // F16 subnormal and overflow boundaries, step by step.
        for base: UInt32 in [0x3300_0000, 0x3380_0000, 0x3880_0000, 0x477F_E000, 0x4780_0000] {
            for offset: UInt32 in 0..<4096 { patterns.append(base &- 2048 &+ offset) }
        }
        var generator = SplitMix(seed: 1)
        for _ in 0..<200_000 { patterns.append(UInt32(truncatingIfNeeded: generator.next())) }
        return patterns
    }
}

/// Asserts that two tensors hold the same shape, dtype and bytes; reports the first difference.
func assertSameBytes(_ got: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    guard got.shape == expected.shape, got.dtype == expected.dtype else {
        XCTFail("\(message): \(got.shape) \(got.dtype) vs \(expected.shape) \(expected.dtype)", file: file, line: line)
        return
    }
    let a = UnsafeRawBufferPointer(start: got.data, count: got.byteCount)
    let b = UnsafeRawBufferPointer(start: expected.data, count: expected.byteCount)
    if let index = (0..<a.count).first(where: { a[$0] != b[$0] }) {
        let element = index / got.dtype.byteSize
        XCTFail("\(message): element \(element) is \(got.loadScalar(at: element)), expected \(expected.loadScalar(at: element))", file: file, line: line)
    }
}

/// A small deterministic generator for test data (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Float { Float(next() >> 40) * 0x1p-24 }
    mutating func float(in range: ClosedRange<Float>) -> Float { range.lowerBound + (range.upperBound - range.lowerBound) * unit() }
    mutating func int(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
