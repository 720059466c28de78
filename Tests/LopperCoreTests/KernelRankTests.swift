import XCTest
import LopperCore

/// Per-row and whole-tensor ranks against a scalar reference that counts, for each entry,
/// the entries below it: smaller values, NaN below every number, -0 equal to +0, and equal
/// values at a higher index (the lower index ranks higher, as top-k keeps it first).
final class KernelRankTests: XCTestCase {
    func referenceRanks(_ values: [Float]) -> [Float] {
        func below(_ i: Int, _ j: Int) -> Bool {
            let a = values[i], b = values[j]
            if a.isNaN || b.isNaN { return a.isNaN && !b.isNaN || a.isNaN && b.isNaN && i > j }
            return a < b || a == b && i > j
        }
        return values.indices.map { j in Float(values.indices.filter { below($0, j) }.count) }
    }

    func testRanksMatchTheScalarReference() throws {
        var generator = SplitMix(seed: 41)
        let specials: [Float] = [.nan, 0, -0, .infinity, -.infinity, 1e-40]
        for (rows, cols) in [(1, 1), (3, 5), (7, 33), (2, 130), (5, 17)] {
            for dtype in KernelHarnessTests.computeTypes {
                for distinct in [nil, 3] as [Int?] {
                    let values = (0..<rows * cols).map { index -> Float in
                        if index % 11 == 5 { return specials[(index / 11) % specials.count] }
                        return distinct.map { Float(generator.int(below: $0)) - 1 } ?? generator.float(in: -2...2)
                    }
                    let tensor = Tensor(values, shape: rows == 1 ? [cols] : [rows, cols], dtype: dtype)
                    let widened = tensor.floats()
                    let what = "\(dtype) \(rows)x\(cols) distinct \(String(describing: distinct))"
                    let perRow = try ranks(tensor, perRow: true)
                    XCTAssertEqual(perRow.dtype, .f32)
                    XCTAssertEqual(perRow.shape, tensor.shape)
                    var expected: [Float] = []
                    for row in 0..<rows { expected += referenceRanks(Array(widened[row * cols..<(row + 1) * cols])) }
                    XCTAssertEqual(perRow.floats(), expected, what)
                    XCTAssertEqual(try ranks(tensor, perRow: false).floats(), referenceRanks(widened), what)
                }
            }
        }
    }

    /// The entries of rank >= n - k are the ones the top-k mask keeps, ties included.
    func testHighRanksAreTheTopK() throws {
        let tensor = Tensor([2, 1, 2, 3, 2, 1, 0, 2], shape: [2, 4])
        XCTAssertEqual(try ranks(tensor, perRow: true).floats(), [2, 0, 1, 3, 3, 1, 0, 2])
        let mask = try topKMaskPerRow(tensor, 2).floats()
        let ranked = try ranks(tensor, perRow: true).floats()
        XCTAssertEqual(mask, ranked.map { $0 >= 2 ? 1 : 0 })
        XCTAssertThrowsError(try ranks(Tensor(zeros: [2, 2, 2]), perRow: true))
        XCTAssertEqual(try ranks(Tensor(zeros: [2, 2, 2]), perRow: false).floats(), [7, 6, 5, 4, 3, 2, 1, 0])
    }
}
