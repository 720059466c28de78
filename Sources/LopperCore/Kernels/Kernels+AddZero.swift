// x + 0, rounded back to x's own 16-bit dtype: what a dropped entry of a merged output is
// (`base + 0`), and what `apply` patches a sparse delta onto. For every finite value but -0
// it is the value itself, so the pass is a copy that checks each run of 4 for the few
// other bit patterns (-0, Inf, NaN) and looks those up in a table made by the general
// kernel once: exactly `add(x, 0, dtype: x.dtype)`, at memory speed.

/// `add(a, 0, dtype: a.dtype)`, the same bits, for any dtype.
public func addingZero(_ a: Tensor) throws -> Tensor {
    guard let table = addZeroTable(a.dtype) else { return try add(a, 0, dtype: a.dtype) }
    let result = try Tensor(uninitialized: a.shape, dtype: a.dtype)
    let source = UnsafePointer(a.data.assumingMemoryBound(to: UInt16.self))
    let target = result.data.assumingMemoryBound(to: UInt16.self)
    // Four lanes to a word. Exponent bits all ones is Inf or NaN; the check finds a lane
    // equal to it, or to -0, by the zero-lane test (v - 1) & ~v & 0x8000 on the XORs.
    let exponent: UInt64 = (a.dtype == .bf16 ? 0x7F80 : 0x7C00) &* 0x0001_0001_0001_0001
    let ones: UInt64 = 0x0001_0001_0001_0001, tops: UInt64 = 0x8000_8000_8000_8000
    Parallel.forEachChunk(count: a.count) { range in
        var index = range.lowerBound
        while index + 4 <= range.upperBound {
            let word = UnsafeRawPointer(source + index).loadUnaligned(as: UInt64.self)
            let special = (word & exponent) ^ exponent, negativeZero = word ^ tops
            if ((special &- ones) & ~special | (negativeZero &- ones) & ~negativeZero) & tops == 0 {
                UnsafeMutableRawPointer(target + index).storeBytes(of: word, toByteOffset: 0, as: UInt64.self)
            } else {
                for lane in 0..<4 { target[index + lane] = table[Int(source[index + lane])] }
            }
            index += 4
        }
        while index < range.upperBound { target[index] = table[Int(source[index])]; index += 1 }
    }
    return result
}

/// `x + 0` of every 16-bit pattern `x` of BF16 or F16 by the general kernel; nil for other dtypes.
private func addZeroTable(_ dtype: DType) -> UnsafePointer<UInt16>? {
    switch dtype {
    case .bf16: return AddZeroTables.bf16
    case .f16: return AddZeroTables.f16
    default: return nil
    }
}

private enum AddZeroTables {
    static let bf16 = make(.bf16)
    static let f16 = make(.f16)

    static func make(_ dtype: DType) -> UnsafePointer<UInt16> {
        let patterns = try! Tensor(uninitialized: [65536], dtype: dtype)
        let bits = patterns.data.assumingMemoryBound(to: UInt16.self)
        for pattern in 0..<65536 { bits[pattern] = UInt16(pattern) }
        let sums = try! add(patterns, 0, dtype: dtype)
        let table = UnsafeMutablePointer<UInt16>.allocate(capacity: 65536)
        table.update(from: sums.data.assumingMemoryBound(to: UInt16.self), count: 65536)
        return UnsafePointer(table)
    }
}
