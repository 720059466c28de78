import XCTest
import LopperCore

final class RandomTests: XCTestCase {
    /// Known-answer vectors of Random123 (kat_vectors, philox4x32 10 rounds).
    func testPhiloxKnownAnswers() {
        XCTAssertEqual(Philox.block(counter: SIMD4(0, 0, 0, 0), key: SIMD2(0, 0)),
                       SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        XCTAssertEqual(Philox.block(counter: SIMD4(repeating: 0xFFFF_FFFF), key: SIMD2(repeating: 0xFFFF_FFFF)),
                       SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        XCTAssertEqual(Philox.block(counter: SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344),
                                    key: SIMD2(0xA409_3822, 0x299F_31D0)),
                       SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
    }

    /// The SIMD stream equals the scalar reference, word for word, at odd offsets.
    func testUniformFollowsTheDocumentedStreamLayout() throws {
        let key = RandomKey(seed: 0x1234_5678_9ABC_DEF0, name: "model.layers.0.mlp.up_proj.weight")
        let values = try uniform([1003], key: key).floats()
        for index in [0, 1, 3, 4, 31, 32, 33, 500, 1002] {
            let block = UInt64(index / 32 * 8 + index % 32 % 8)
            let counter = SIMD4<UInt32>(UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32),
                                        UInt32(truncatingIfNeeded: key.nameHash), UInt32(truncatingIfNeeded: key.nameHash >> 32))
            let word = Philox.block(counter: counter, key: SIMD2(UInt32(truncatingIfNeeded: key.seed), UInt32(truncatingIfNeeded: key.seed >> 32)))[index % 32 / 8]
            XCTAssertEqual(values[index], Float(word >> 8) * 0x1p-24, "element \(index)")
        }
        XCTAssertEqual(fnv1a64(""), 0xCBF2_9CE4_8422_2325)
        XCTAssertEqual(fnv1a64("a"), 0xAF63_DC4C_8601_EC8C)
    }

    /// Masks follow the documented 16-bit layout and `KeepRule`, element for element,
    /// including the tie path that resolves a draw equal to the threshold's high half.
    func testMasksFollowTheDocumentedLayoutAndRule() throws {
        let key = RandomKey(seed: 0xDEAD_BEEF_0123_4567, name: "model.layers.3.self_attn.q_proj.weight")
        let philoxKey = SIMD2<UInt32>(UInt32(truncatingIfNeeded: key.seed), UInt32(truncatingIfNeeded: key.seed >> 32))
        func counter(_ low: UInt64, high: UInt32 = 0) -> SIMD4<UInt32> {
            SIMD4(UInt32(truncatingIfNeeded: low), UInt32(truncatingIfNeeded: low >> 32) | high,
                  UInt32(truncatingIfNeeded: key.nameHash), UInt32(truncatingIfNeeded: key.nameHash >> 32))
        }
        let n = (1 << 20) + 37
        // keep = 0.1: T = floor(0.1 * 2^32) has a nonzero low half, so ties need refining;
        // keep = 0.25 is a multiple of 2^-16: ties are plain drops.
        for keep in [0.1, 0.25] {
            let mask = try bernoulliMask([n], keep: keep, key: key)
            let bytes = mask.data.assumingMemoryBound(to: UInt8.self)
            let threshold = UInt64(keep * 4_294_967_296), high = UInt32(threshold >> 16), low = UInt32(threshold & 0xFFFF)
            var ties = 0
            for index in 0..<n {
                let group = UInt64(index / 64), r = index % 64
                let word = Philox.block(counter: counter(group * 8 + UInt64(r % 8)), key: philoxKey)[r / 16]
                let draw = r % 16 < 8 ? word & 0xFFFF : word >> 16
                var kept = draw < high
                if draw == high {
                    ties += 1
                    let refinement = Philox.block(counter: counter(UInt64(index), high: 0x8000_0000), key: philoxKey)[0] >> 16
                    kept = refinement < low
                }
                if bytes[index] != (kept ? 1 : 0) { XCTFail("keep \(keep) element \(index)"); break }
            }
            XCTAssertGreaterThan(ties, 0, "keep \(keep): the tie path was not exercised")
        }
    }

    func testMasksDoNotDependOnThreadCount() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let shape = [3 * Parallel.chunkSize + 17]
        var masks: [Tensor] = []
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            masks.append(try bernoulliMask(shape, keep: 0.3, key: RandomKey(seed: 7, name: "w")))
        }
        let bytes = masks.map { Array(UnsafeRawBufferPointer(start: $0.data, count: $0.byteCount)) }
        XCTAssertEqual(bytes[0], bytes[1])
        XCTAssertEqual(bytes[0], bytes[2])
    }

    /// Kept counts within 6 sigma of the binomial mean; 0 and 1 exact.
    func testBernoulliKeptCountsAreBinomial() throws {
        let n = 1 << 20
        // Rates with and without a low threshold half (see KeepRule).
        for keep in [0.01, 0.1, 0.5, 0.9, 0.25, 0.75] {
            let kept = Double(try countNonZero(try bernoulliMask([n], keep: keep, key: RandomKey(seed: 42, name: "t\(keep)"))))
            let sigma = (Double(n) * keep * (1 - keep)).squareRoot()
            XCTAssertLessThan(Swift.abs(kept - Double(n) * keep), 6 * sigma, "keep \(keep)")
        }
        // Below 2^-16 only refined ties keep anything: a plain 16-bit draw would keep none.
        let large = 1 << 24, tiny = 3e-6
        let keptTiny = Double(try countNonZero(try bernoulliMask([large], keep: tiny, key: RandomKey(seed: 42, name: "tiny"))))
        XCTAssertLessThan(Swift.abs(keptTiny - Double(large) * tiny), 6 * (Double(large) * tiny).squareRoot())
        XCTAssertEqual(try countNonZero(try bernoulliMask([1000], keep: 0, key: RandomKey(seed: 1, name: "z"))), 0)
        XCTAssertEqual(try countNonZero(try bernoulliMask([1000], keep: 1, key: RandomKey(seed: 1, name: "o"))), 1000)
        XCTAssertThrowsError(try bernoulliMask([10], keep: 1.5, key: RandomKey(seed: 1, name: "x")))
    }

    func testUniformMomentsAndIndependenceOfStreams() throws {
        let n = 1 << 20
        let u = try uniform([n], key: RandomKey(seed: 3, name: "u"))
        XCTAssertEqual(try mean(u), 0.5, accuracy: 6 * (1.0 / 12 / Double(n)).squareRoot())
        XCTAssertEqual(try variance(u), 1.0 / 12, accuracy: 1e-3)
        XCTAssertGreaterThanOrEqual(try min(u), 0)
        XCTAssertLessThan(try max(u), 1)
        let otherSeed = try uniform([64], key: RandomKey(seed: 4, name: "u")).floats()
        let otherName = try uniform([64], key: RandomKey(seed: 3, name: "v")).floats()
        let same = try uniform([64], key: RandomKey(seed: 3, name: "u")).floats()
        XCTAssertEqual(same, Array(u.floats().prefix(64)))
        XCTAssertNotEqual(otherSeed, same)
        XCTAssertNotEqual(otherName, same)
    }
}
