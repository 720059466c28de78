import XCTest
import LopperCore

final class TensorTests: XCTestCase {
    func testZerosAndValues() {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.floats(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Int(bitPattern: t.data) % 64, 0)
        XCTAssertEqual(try Tensor(zeros: [0, 5]).count, 0)
        XCTAssertEqual(try Tensor(zeros: [], dtype: .bf16).count, 1)
    }

    func testOverflowingShapeIsRefused() {
        XCTAssertThrowsError(try Tensor.elementCount([1 << 40, 1 << 40]))
        XCTAssertThrowsError(try Tensor.elementCount([-1]))
    }

    func testBF16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly half-way between two BF16 values: ties go to even (1.0).
        XCTAssertEqual(floatToBF16(1 + 0x1p-8), 0x3F80)
        // 1 + 3*2^-8 is half-way too: rounds up to the even mantissa 0x3F82.
        XCTAssertEqual(floatToBF16(1 + 3 * 0x1p-8), 0x3F82)
        XCTAssertTrue(bf16ToFloat(floatToBF16(.nan)).isNaN)
        XCTAssertEqual(bf16ToFloat(floatToBF16(.infinity)), .infinity)
        XCTAssertEqual(bf16ToFloat(floatToBF16(-.infinity)), -.infinity)
    }
}
