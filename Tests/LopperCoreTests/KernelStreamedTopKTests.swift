import XCTest
import LopperCore

/// Top-k over several tensors seen one at a time (`StreamedTopK`, TIES's model-wide trim)
/// against a sort of all their values together: the same tie rule as one tensor (equal
/// values keep the earlier tensor, then the lower index), NaN below every number.
final class KernelStreamedTopKTests: XCTestCase {
    func testStreamedTopKMatchesASortOfAllTensors() throws {
        var generator = SplitMix(seed: 43)
        for dtype in KernelHarnessTests.computeTypes {
            for distinct in [nil, 4] as [Int?] {
                let sizes = [1, 37, 300, 5, 1024]
                let tensors = sizes.enumerated().map { part, size in
                    Tensor((0..<size).map { index -> Float in
                        if (index + part) % 53 == 7 { return [.nan, 0, -0, .infinity][(index / 53) % 4] }
                        return distinct.map { Float(generator.int(below: $0)) } ?? generator.float(in: -3...3)
                    }, dtype: dtype)
                }
                let all = tensors.flatMap { $0.floats() }
                // Ascending order keys with NaN first; the k largest, ties to the lower position.
                let order = all.indices.sorted { i, j in
                    let a = all[i], b = all[j]
                    if a.isNaN != b.isNaN { return b.isNaN }
                    if a.isNaN || a == b { return i < j }
                    return a > b
                }
                for k in Set([0, 1, all.count / 3, all.count - 1, all.count]) {
                    var selection = StreamedTopK()
                    for tensor in tensors { try selection.countFirst(tensor) }
                    if try selection.finishFirst(keep: k) { for tensor in tensors { try selection.countSecond(tensor) } }
                    let threshold = selection.finish()
                    var kept: [Float] = [], ties = 0
                    for tensor in tensors {
                        let (mask, equal) = try streamedTopKMask(tensor, threshold, tiesBefore: ties)
                        ties += equal
                        kept += mask.floats()
                    }
                    let expected = Set(order.prefix(k))
                    XCTAssertEqual(kept, all.indices.map { expected.contains($0) ? 1 : 0 }, "\(dtype) distinct \(String(describing: distinct)) k \(k)")
                }
            }
        }
        var selection = StreamedTopK()
        try selection.countFirst(Tensor([1, 2]))
        XCTAssertThrowsError(try selection.finishFirst(keep: 3))
    }
}
