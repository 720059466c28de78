import XCTest
import LopperCore

/// `lowRankProduct` (a LoRA delta) against a Double reference written here, for every
/// compute dtype of the factors and the base, both orientations, odd sizes and several
/// chunks, and the same bits on 1 and 4 threads.
final class KernelLowRankTests: XCTestCase {
    func reference(b: Tensor, a: Tensor, scale: Double, transposed: Bool, base: Tensor?) -> [Double] {
        let rank = a.shape[0], outputs = b.shape[0], inputs = a.shape[1]
        let bv = b.floats(), av = a.floats(), w = base?.floats()
        var result: [Double] = []
        let (rows, columns) = transposed ? (inputs, outputs) : (outputs, inputs)
        for row in 0..<rows {
            for column in 0..<columns {
                let (i, j) = transposed ? (column, row) : (row, column)
                var sum = 0.0
                for k in 0..<rank { sum += Double(bv[i * rank + k]) * Double(av[k * inputs + j]) }
                result.append(scale * sum + Double(w?[row * columns + column] ?? 0))
            }
        }
        return result
    }

    func testMatchesTheReferenceForEveryDTypeAndOrientation() throws {
        var generator = SplitMix(seed: 5)
        for (outputs, inputs, rank) in [(1, 1, 1), (7, 13, 3), (33, 65, 8), (300, 257, 16)] {
            for dtype in KernelHarnessTests.computeTypes {
                let values = { (count: Int) in (0..<count).map { _ in generator.float(in: -1...1) } }
                let b = Tensor(values(outputs * rank), shape: [outputs, rank], dtype: dtype)
                let a = Tensor(values(rank * inputs), shape: [rank, inputs], dtype: .f32)
                for transposed in [false, true] {
                    let shape = transposed ? [inputs, outputs] : [outputs, inputs]
                    let base = Tensor(values(outputs * inputs), shape: shape, dtype: dtype)
                    let result = try lowRankProduct(b: b, a: a, scale: 0.75, transposed: transposed, base: base)
                    XCTAssertEqual(result.shape, shape)
                    XCTAssertEqual(result.dtype, .f32)
                    let expected = reference(b: b, a: a, scale: 0.75, transposed: transposed, base: base)
                    for (x, y) in zip(result.floats(), expected) {
                        XCTAssertEqual(Double(x), y, accuracy: 1e-5 * Double(rank), "\(outputs)x\(inputs) r\(rank) \(dtype) \(transposed)")
                    }
                    let alone = try lowRankProduct(b: b, a: a, scale: 0.75, transposed: transposed)
                    let expectedAlone = reference(b: b, a: a, scale: 0.75, transposed: transposed, base: nil)
                    for (x, y) in zip(alone.floats(), expectedAlone) { XCTAssertEqual(Double(x), y, accuracy: 1e-5 * Double(rank)) }
                }
            }
        }
    }

    func testSameBitsOnAnyThreadCountAndShapeErrors() throws {
        var generator = SplitMix(seed: 9)
        let b = Tensor((0..<(700 * 4)).map { _ in generator.float(in: -1...1) }, shape: [700, 4])
        let a = Tensor((0..<(4 * 300)).map { _ in generator.float(in: -1...1) }, shape: [4, 300], dtype: .bf16)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = try lowRankProduct(b: b, a: a, scale: 2).floats()
        Parallel.threads = 4
        XCTAssertEqual(try lowRankProduct(b: b, a: a, scale: 2).floats(), one)
        XCTAssertThrowsError(try lowRankProduct(b: a, a: b, scale: 1))
        XCTAssertThrowsError(try lowRankProduct(b: b, a: a, scale: 1, base: Tensor([1, 2], shape: [1, 2])))
    }
}
