import XCTest
@testable import LopperCore

/// k-th largest, top-k masks (whole tensor and per row) and N:M masks against sorting
/// references, with the documented tie rule: equal values keep the lower index first.
final class KernelSelectionTests: XCTestCase {
    /// Indices of the k largest values, ties to the lower index (a stable sort).
    /// NaN counts as smaller than every number (and equal to NaN).
    func referenceTopK(_ values: [Float], _ k: Int) -> Set<Int> {
        Set(values.indices.sorted { i, j in
            let a = values[i], b = values[j]
            if a.isNaN != b.isNaN { return b.isNaN }
            return a.isNaN || a == b ? i < j : a > b
        }.prefix(k))
    }

    func testKthLargestAndTopKMatchASort() throws {
        var generator = SplitMix(seed: 31)
        for size in [1, 2, 17, 1023, 4099, 70001, 140_007] {
            for dtype in KernelHarnessTests.computeTypes {
                // Few distinct levels make many ties.
                for distinct in [nil, 7] as [Int?] {
                    let values = (0..<size).map { _ -> Float in
                        distinct.map { Float(generator.int(below: $0)) } ?? generator.float(in: -4...4)
                    }
                    let tensor = Tensor(values, dtype: dtype)
                    let widened = tensor.floats()
                    let sorted = widened.sorted(by: >)
                    for k in Set([1, size / 3 + 1, size]) {
                        let what = "\(dtype) size \(size) k \(k) distinct \(String(describing: distinct))"
                        XCTAssertEqual(try kthLargest(tensor, k), sorted[k - 1], what)
                        let mask = try topKMask(tensor, k)
                        XCTAssertEqual(mask.dtype, .bool)
                        let bits = mask.floats()
                        let kept = Set(bits.indices.filter { bits[$0] != 0 })
                        XCTAssertEqual(kept, referenceTopK(widened, k), what)
                    }
                    XCTAssertEqual(try countNonZero(try topKMask(tensor, 0)), 0)
                }
            }
        }
        XCTAssertThrowsError(try topKMask(Tensor([1, 2]), 3))
        XCTAssertThrowsError(try kthLargest(Tensor([1, 2]), 0))
    }

    /// Tensors past 2^18 elements take the histogram selection: NaN (below every number),
    /// signed zeros (equal), infinities, subnormals and heavy ties, on every dtype.
    func testHistogramSelectionMatchesASort() throws {
        var generator = SplitMix(seed: 33)
        let size = 300_007
        for dtype in KernelHarnessTests.computeTypes {
            for distinct in [nil, 5] as [Int?] {
                let specials: [Float] = [.nan, -.nan, 0, -0, .infinity, -.infinity, .leastNormalMagnitude / 4, -.leastNormalMagnitude / 4]
                let values = (0..<size).map { index -> Float in
                    if index % 101 == 0 { return specials[(index / 101) % specials.count] }
                    return distinct.map { Float(generator.int(below: $0)) - 2 } ?? generator.float(in: -4...4)
                }
                let tensor = Tensor(values, dtype: dtype)
                let widened = tensor.floats()
                // Ascending order with NaN first and -0 == +0; stable on index for the top-k set.
                func rank(_ i: Int, _ j: Int) -> Bool {
                    let a = widened[i], b = widened[j]
                    if a.isNaN != b.isNaN { return !a.isNaN }
                    if a.isNaN || a == b { return i < j }
                    return a > b
                }
                let order = widened.indices.sorted(by: rank)
                for k in [1, 2, size / 2, size - size / 50, size - 1, size] {
                    let what = "\(dtype) k \(k) distinct \(String(describing: distinct))"
                    let expected = widened[order[k - 1]]
                    let got = try kthLargest(tensor, k)
                    XCTAssertTrue(got == expected || (got.isNaN && expected.isNaN), "\(what): \(got) vs \(expected)")
                    let bits = try topKMask(tensor, k).floats()
                    XCTAssertEqual(Set(bits.indices.filter { bits[$0] != 0 }), Set(order.prefix(k)), what)
                }
            }
        }
    }

    /// The one-pass bracket select and the histogram select it falls back on, on every
    /// path and dtype, against a sort: brackets that hold the answer (everything, a single
    /// key, an edge at the answer) give its key and the top-k mask; brackets that miss it
    /// on either side say so. Heavy ties, NaN and both zeros included.
    func testBracketSelectionAndItsFallback() throws {
        var generator = SplitMix(seed: 35)
        let size = (1 << 18) + 77
        let specials: [Float] = [.nan, 0, -0, .infinity, -.infinity]
        for dtype in KernelHarnessTests.computeTypes {
            let values = (0..<size).map { index -> Float in
                index % 97 == 0 ? specials[index % specials.count] : Float(generator.int(below: 300)) / 16 - 9
            }
            let tensor = Tensor(values, dtype: dtype)
            let widened = tensor.floats()
            let keys = widened.map { $0.isNaN ? 0 : ($0 + 0).bitPattern ^ (($0 + 0).sign == .minus ? 0xFFFF_FFFF : 0x8000_0000) }
            let sortedKeys = keys.sorted()
            let order = keys.indices.sorted { keys[$0] != keys[$1] ? keys[$0] > keys[$1] : $0 < $1 }
            for k in [1, 5000, size / 2, size - 1] {
                let rank = size - k, answer = sortedKeys[rank]
                let expected = Set(order.prefix(k))
                for path in KernelPath.available {
                    KernelPath.active = path
                    let what = "\(dtype) k \(k) \(path)"
                    XCTAssertEqual(histogramSelectKey(tensor, rank: rank), answer, what)
                    let holding = [0...UInt32.max, answer...answer, answer...answer &+ 9000, answer &- Swift.min(answer, 77)...answer]
                    for bracket in holding {
                        XCTAssertEqual(bracketSelectKey(tensor, rank: rank, bracket: bracket), answer, "\(what) \(bracket)")
                        let bits = try XCTUnwrap(try bracketTopKMask(tensor, k, bracket: bracket), what).floats()
                        XCTAssertEqual(Set(bits.indices.filter { bits[$0] != 0 }), expected, "\(what) \(bracket)")
                    }
                    var missing: [ClosedRange<UInt32>] = []
                    if answer < UInt32.max { missing.append(answer + 1...UInt32.max) }
                    if answer > 0 { missing.append(0...answer - 1) }
                    for bracket in missing {
                        XCTAssertNil(bracketSelectKey(tensor, rank: rank, bracket: bracket), "\(what) \(bracket)")
                        XCTAssertNil(try bracketTopKMask(tensor, k, bracket: bracket), "\(what) \(bracket)")
                    }
                }
                KernelPath.active = KernelPath.widest
            }
        }
    }

    /// From 4M elements the bracket is sampled in longer runs: the k-th largest and the top-k
    /// mask (exactly k, keys above the threshold, ties in index order) agree with the
    /// histogram select on every path, for F32 and BF16 values with and without heavy ties.
    func testSampledBracketOnALargeTensor() throws {
        var generator = SplitMix(seed: 36)
        let size = (1 << 22) + 333
        for dtype in [DType.f32, .bf16] {
            for distinct in [nil, 5] as [Int?] {
                let values = (0..<size).map { _ -> Float in distinct.map { Float(generator.int(below: $0)) } ?? generator.float(in: -1...1) }
                let tensor = Tensor(values, dtype: dtype)
                let keys = tensor.floats().map { ($0 + 0).bitPattern ^ (($0 + 0).sign == .minus ? 0xFFFF_FFFF : 0x8000_0000) }
                for k in [1, size / 10, size / 2] {
                    let answer = histogramSelectKey(tensor, rank: size - k)
                    for path in KernelPath.available {
                        KernelPath.active = path
                        defer { KernelPath.active = KernelPath.widest }
                        let what = "\(dtype) distinct \(String(describing: distinct)) k \(k) \(path)"
                        XCTAssertEqual(keyValue(answer), try kthLargest(tensor, k), what)
                        let bits = try topKMask(tensor, k).floats()
                        var kept = 0, misplaced = 0, lastKeptTie = -1, firstDroppedTie = Int.max
                        for index in 0..<size {
                            if bits[index] != 0 {
                                kept += 1
                                misplaced += keys[index] < answer ? 1 : 0
                                if keys[index] == answer { lastKeptTie = index }
                            } else {
                                misplaced += keys[index] > answer ? 1 : 0
                                if keys[index] == answer { firstDroppedTie = Swift.min(firstDroppedTie, index) }
                            }
                        }
                        XCTAssertEqual(kept, k, what)
                        XCTAssertEqual(misplaced, 0, "\(what): kept keys below the threshold or dropped ones above it")
                        XCTAssertLessThan(lastKeptTie, firstDroppedTie, "\(what): ties kept in index order")
                    }
                }
            }
        }
    }

    /// Per-row masks of long rows select in one pass with a sampled bracket on the wide
    /// paths; a narrow bracket (no deviations) misses on some rows, which are then
    /// selected another way. Every path, dtype and k against a sort, with NaN, both zeros,
    /// infinities and rows of heavy ties; the default bracket misses none of the random rows.
    func testRowBracketAndItsFallback() throws {
        var generator = SplitMix(seed: 36)
        let rows = 12, cols = 4099
        let specials: [Float] = [.nan, 0, -0, .infinity, -.infinity]
        let values = (0..<rows * cols).map { index -> Float in
            if index % 89 == 0 { return specials[index % specials.count] }
            return index / cols % 3 == 2 ? Float(generator.int(below: 6)) : generator.float(in: -4...4)
        }
        for dtype in KernelHarnessTests.computeTypes {
            let tensor = Tensor(values, shape: [rows, cols], dtype: dtype), widened = tensor.floats()
            for k in [1, cols / 10, cols / 2, cols - 1, cols] {
                let expected = (0..<rows).map { row in referenceTopK(Array(widened[row * cols ..< (row + 1) * cols]), k) }
                for path in KernelPath.available {
                    KernelPath.active = path
                    defer { KernelPath.active = KernelPath.widest }
                    let bracketed = path != .portable && (dtype == .f32 || dtype == .bf16)
                    for deviations in [4.0, 0] {
                        let (mask, fallbacks) = try rowTopKMask(tensor, k, deviations: deviations)
                        let bits = mask.floats(), what = "\(dtype) k \(k) \(path) deviations \(deviations)"
                        for row in 0..<rows {
                            let kept = Set((0..<cols).filter { bits[row * cols + $0] != 0 })
                            XCTAssertEqual(kept, expected[row], "\(what) row \(row)")
                        }
                        // Only the middle ranks can miss: near either end the bracket stays open.
                        if bracketed && deviations == 0 && (k == cols / 10 || k == cols / 2) {
                            XCTAssertGreaterThan(fallbacks, 0, what)
                        } else {
                            XCTAssertEqual(fallbacks, 0, what)
                        }
                    }
                }
            }
        }
    }

    func testTopKPerRowAndNM() throws {
        var generator = SplitMix(seed: 32)
        for (rows, cols) in [(1, 8), (5, 12), (64, 256), (33, 1028)] {
            for dtype in [DType.f32, .bf16, .f16] {
                let values = (0..<rows * cols).map { _ in Float(generator.int(below: 9)) - 4 }
                let tensor = Tensor(values, shape: [rows, cols], dtype: dtype)
                let widened = tensor.floats()
                for k in [0, 1, cols / 4, cols] {
                    let mask = try topKMaskPerRow(tensor, k).floats()
                    for row in 0..<rows {
                        let slice = Array(widened[row * cols ..< (row + 1) * cols])
                        let kept = Set((0..<cols).filter { mask[row * cols + $0] != 0 })
                        XCTAssertEqual(kept, referenceTopK(slice, k), "\(dtype) [\(rows),\(cols)] k \(k) row \(row)")
                    }
                }
                for (n, m) in [(2, 4), (1, 4), (4, 4)] {
                    let mask = try nmMask(tensor, n: n, m: m).floats()
                    for group in stride(from: 0, to: rows * cols, by: m) {
                        let slice = Array(widened[group ..< group + m])
                        let kept = Set((0..<m).filter { mask[group + $0] != 0 })
                        XCTAssertEqual(kept, referenceTopK(slice, n), "\(dtype) \(n):\(m) group at \(group)")
                    }
                }
            }
        }
        XCTAssertThrowsError(try nmMask(Tensor(zeros: [2, 6]), n: 2, m: 4)) { error in
            XCTAssertTrue("\(error)".contains("do not split into groups of m = 4"), "\(error)")
        }
    }
}
