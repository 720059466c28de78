import XCTest
import LopperCore
import LopperIO

/// The position and checksum codes of sparse deltas against hand-computed values.
final class SparseCodesTests: XCTestCase {
    func testMixIsTheSplitMix64Finaliser() {
        // SplitMix64 seeded with 0: its first two outputs (the reference generator's published values).
        XCTAssertEqual(SparseCodes.mix64(0), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(SparseCodes.mix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4)
    }

    func testGapsAndBitmapsCodeThePositions() throws {
        let set: Set<Int> = [0, 1, 5, 200, 70_000]
        let mask = try Tensor(zeros: [70_001], dtype: .bool)
        for index in set { mask.data.storeBytes(of: 1, toByteOffset: index, as: UInt8.self) }
        let gaps = SparseCodes.gaps(mask)
        // 0, 0, 3, 194 (two bytes: 0xC2 0x01), 69799 (three bytes).
        XCTAssertEqual(Array(gaps.prefix(5)), [0, 0, 3, 0xC2, 0x01])
        XCTAssertEqual(gaps.count, 8)
        let decoded = try gaps.withUnsafeBytes { try SparseCodes.mask(gaps: $0, count: mask.count, expected: set.count) }
        XCTAssertEqual(decoded.bytes(), mask.bytes())
        let bitmap = SparseCodes.bitmap(mask)
        XCTAssertEqual(bitmap[0], 0b0010_0011)
        XCTAssertEqual(try bitmap.withUnsafeBytes { try SparseCodes.mask(bitmap: $0, count: mask.count) }.bytes(), mask.bytes())
        XCTAssertEqual(SparseCodes.positionsChecksum(mask), set.reduce(0) { $0 &+ SparseCodes.mix64(UInt64($1)) })
        // Malformed codes: an index past the end, a code that stops inside a gap, a wrong count.
        XCTAssertThrowsError(try [UInt8]([0xFF, 0xFF, 0x7F]).withUnsafeBytes { try SparseCodes.mask(gaps: $0, count: 10, expected: 1) })
        XCTAssertThrowsError(try [UInt8]([0x80]).withUnsafeBytes { try SparseCodes.mask(gaps: $0, count: 10, expected: 1) })
        XCTAssertThrowsError(try [UInt8]([1, 1]).withUnsafeBytes { try SparseCodes.mask(gaps: $0, count: 10, expected: 3) })
    }

    func testSeededMasksAreTheBernoulliMasksOfTheStream() throws {
        let key = RandomKey(seed: 9, name: "model.layers.0.mlp.up_proj.weight")
        let record = SparseRecord.Mask(threshold: try bernoulliThreshold(keep: 0.3), seed: 9, streamHash: key.nameHash, length: 12, map: .rows)
        let rows = try bernoulliMask([12], keep: 0.3, key: key)
        let mask = try SparseCodes.mask(record, shape: [12, 5])
        for index in 0..<60 {
            XCTAssertEqual(mask.data.load(fromByteOffset: index, as: UInt8.self), rows.data.load(fromByteOffset: index / 5, as: UInt8.self))
        }
        XCTAssertEqual(try bernoulliKeep(threshold: try bernoulliThreshold(keep: 0.3)), 0.3, accuracy: 1e-9)
    }
}

private extension Tensor {
    func bytes() -> [UInt8] { Array(UnsafeRawBufferPointer(start: data, count: byteCount)) }
}
