import XCTest
import LopperCore

final class RandomDARETests: XCTestCase {
    func randomTensor(_ count: Int, _ dtype: DType, seed: UInt64, spread: Float) throws -> Tensor {
        let u = try uniform([count], key: RandomKey(seed: seed, name: "input")).floats()
        return Tensor(u.map { ($0 - 0.5) * spread }, shape: [count], dtype: dtype)
    }

    /// The fused pass equals a scalar reference built from `bernoulliMask`, bit for bit.
    func testFusedPassMatchesScalarReference() throws {
        for dtype in [DType.f32, .bf16, .f16] {
            for count in [1, 7, 33, 4099, 70001] {
                let base = try randomTensor(count, dtype, seed: 1, spread: 2)
                let ft = try add(base, try randomTensor(count, .f32, seed: 2, spread: 0.02), dtype: dtype)
                let key = RandomKey(seed: 9, name: "layer.\(count)")
                let mask = try bernoulliMask([count], keep: 0.1, key: key)
                for output in [DeltaOutput.merged, .delta] {
                    let fused = try fusedDare(base: base, finetuned: ft, keep: 0.1, scale: 10, key: key, output: output)
                    let reference = try Tensor(zeros: [count], dtype: dtype)
                    for index in 0..<count {
                        let b = base.loadScalar(at: index), f = ft.loadScalar(at: index)
                        let d = mask.loadScalar(at: index) != 0 ? (f - b) * 10 : 0
                        reference.storeScalar(output == .merged ? b + d : d, at: index)
                    }
                    XCTAssertEqual(Array(UnsafeRawBufferPointer(start: fused.data, count: fused.byteCount)),
                                   Array(UnsafeRawBufferPointer(start: reference.data, count: reference.byteCount)),
                                   "\(dtype) \(count) \(output)")
                    let masked = try fusedMask(base: base, finetuned: ft, mask: mask, scale: 10, output: output)
                    XCTAssertEqual(masked.floats(), fused.floats())
                }
            }
        }
    }

    /// Mixed input and output dtypes take the block path: same mask, same arithmetic.
    func testMixedDTypesMatchScalarReference() throws {
        for (baseType, fineType, outType) in [(DType.bf16, DType.f32, DType.f16), (.f32, .f32, .bf16), (.f16, .bf16, .f32)] {
            for count in [5, 2048 + 63, 70001] {
                let base = try randomTensor(count, baseType, seed: 11, spread: 2)
                let ft = try add(base, try randomTensor(count, .f32, seed: 12, spread: 0.02), dtype: fineType)
                let key = RandomKey(seed: 13, name: "mixed.\(count)")
                let mask = try bernoulliMask([count], keep: 0.3, key: key)
                let fused = try fusedDare(base: base, finetuned: ft, keep: 0.3, scale: 3, key: key, dtype: outType)
                let reference = try Tensor(zeros: [count], dtype: outType)
                for index in 0..<count {
                    let b = base.loadScalar(at: index), f = ft.loadScalar(at: index)
                    reference.storeScalar(b + (mask.loadScalar(at: index) != 0 ? (f - b) * 3 : 0), at: index)
                }
                XCTAssertEqual(Array(UnsafeRawBufferPointer(start: fused.data, count: fused.byteCount)),
                               Array(UnsafeRawBufferPointer(start: reference.data, count: reference.byteCount)),
                               "\(baseType) \(fineType) -> \(outType), \(count)")
            }
        }
    }

    func testKeepAllIsIdentityAndRescaledDeltaIsUnbiased() throws {
        let n = 1 << 20
        let base = try randomTensor(n, .bf16, seed: 3, spread: 1)
        let ft = try add(base, 0.01, dtype: .bf16)
        let whole = try fusedDare(base: base, finetuned: ft, keep: 1, scale: 1, key: RandomKey(seed: 1, name: "w"))
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: whole.data, count: whole.byteCount)),
                       Array(UnsafeRawBufferPointer(start: ft.data, count: ft.byteCount)))
        // E[m * D / (1 - p)] = D: the mean of the pruned delta matches the original's.
        let f32Base = try base.converted(to: .f32), f32Ft = try ft.converted(to: .f32)
        let pruned = try fusedDare(base: f32Base, finetuned: f32Ft, keep: 0.1, scale: 10, key: RandomKey(seed: 5, name: "w"), output: .delta)
        let original = try mean(try sub(f32Ft, f32Base))
        let spread = (try variance(pruned) / Double(n)).squareRoot()
        XCTAssertEqual(try mean(pruned), original, accuracy: 6 * spread)
        XCTAssertThrowsError(try fusedDare(base: base, finetuned: Tensor(zeros: [3]), keep: 0.5, scale: 2, key: RandomKey(seed: 1, name: "x")))
    }
    /// The BF16 pass works on even/odd element pairs and redoes a 64-element group in
    /// element order on a tie (draw == H) or a NaN result: both paths, bit for bit.
    func testBF16TiesAndNaNMatchScalarReference() throws {
        let key = RandomKey(seed: 21, name: "ties")
        // Element 5 draws the low 16 bits of word 0 of block 5: make H equal to it.
        let word = Philox.block(counter: SIMD4(5, 0, UInt32(truncatingIfNeeded: key.nameHash),
                                               UInt32(truncatingIfNeeded: key.nameHash >> 32)),
                                key: SIMD2(21, 0))[0]
        let keep = (Double(word & 0xFFFF) + 0.5) / 65536
        let count = 64 * 40 + 17
        let base = try randomTensor(count, .bf16, seed: 22, spread: 2)
        var values = try add(base, try randomTensor(count, .f32, seed: 23, spread: 0.5)).floats()
        values[200] = .nan; values[201] = -.infinity; values[333] = .infinity
        let ft = Tensor(values, shape: [count], dtype: .bf16)
        base.storeScalar(.infinity, at: 333)   // Inf - Inf: NaN from finite-free inputs
        let mask = try bernoulliMask([count], keep: keep, key: key)
        for output in [DeltaOutput.merged, .delta] {
            let fused = try fusedDare(base: base, finetuned: ft, keep: keep, scale: 3, key: key, output: output)
            let reference = try Tensor(zeros: [count], dtype: .bf16)
            for index in 0..<count {
                let b = base.loadScalar(at: index), f = ft.loadScalar(at: index)
                let d = mask.loadScalar(at: index) != 0 ? (f - b) * 3 : 0
                reference.storeScalar(output == .merged ? b + d : d, at: index)
            }
            XCTAssertEqual(Array(UnsafeRawBufferPointer(start: fused.data, count: fused.byteCount)),
                           Array(UnsafeRawBufferPointer(start: reference.data, count: reference.byteCount)), "\(output)")
        }
    }

    /// From 4M elements the BF16 pass writes with non-temporal stores (`streamingThreshold`):
    /// the same bits as the scalar reference, a partial group and a partial chunk included.
    func testLargeBF16OutputMatchesScalarReference() throws {
        let count = (1 << 22) + 4099
        let key = RandomKey(seed: 31, name: "large")
        let base = try randomTensor(count, .bf16, seed: 32, spread: 2)
        let ft = try add(base, try randomTensor(count, .f32, seed: 33, spread: 0.02), dtype: .bf16)
        let mask = try bernoulliMask([count], keep: 0.2, key: key)
        let fused = try fusedDare(base: base, finetuned: ft, keep: 0.2, scale: 5, key: key)
        let reference = try Tensor(zeros: [count], dtype: .bf16)
        for index in 0..<count {
            let b = base.loadScalar(at: index), f = ft.loadScalar(at: index)
            reference.storeScalar(b + (mask.loadScalar(at: index) != 0 ? (f - b) * 5 : 0), at: index)
        }
        XCTAssertTrue(memcmp(fused.data, reference.data, fused.byteCount) == 0)
    }
}
