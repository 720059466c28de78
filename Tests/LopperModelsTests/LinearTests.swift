import XCTest
import LopperCore
import LopperModels

final class LinearTests: XCTestCase {
    func testLinearMatchesAScalarReference() throws {
        let w = Tensor((0..<12).map { Float($0) * 0.5 - 2 }, shape: [3, 4])
        let b = Tensor([1, -1, 0.5], shape: [3])
        let x = Tensor((0..<8).map { Float($0) - 3 }, shape: [2, 4])
        let y = try Linear(weight: try w.converted(to: .bf16), bias: b)(x).floats()
        let wv = w.floats(), xv = x.floats(), bv = b.floats()
        for t in 0..<2 {
            for o in 0..<3 {
                let expected = (0..<4).reduce(bv[o]) { $0 + xv[t * 4 + $1] * wv[o * 4 + $1] }
                XCTAssertEqual(y[t * 3 + o], expected, accuracy: 1e-5)
            }
        }
    }
}
