/// Mask kernels of sparse deltas: where two tensors differ bit for bit, whether one
/// mask lies inside another, and moving the elements under a BOOL mask to and from a
/// dense run in element order. Chunks are fixed by the element count (see `Parallel`),
/// so results do not depend on the thread count.

/// A BOOL tensor: 1 where the bits of `a` and `b` (same dtype and shape) differ.
public func bitsDiffer(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.shape == b.shape else { throw TensorError.shapeMismatch("bitsDiffer", a.shape, b.shape) }
    guard a.dtype == b.dtype else { throw TensorError.invalid("bitsDiffer: \(a.dtype.name) vs \(b.dtype.name)") }
    let result = try Tensor(uninitialized: a.shape, dtype: .bool)
    let out = result.data.assumingMemoryBound(to: UInt8.self)
    func compare<Word: FixedWidthInteger>(_: Word.Type) {
        let x = UnsafePointer(a.data.assumingMemoryBound(to: Word.self)), y = UnsafePointer(b.data.assumingMemoryBound(to: Word.self))
        Parallel.forEachChunk(count: a.count) { range in
            for index in range { out[index] = x[index] == y[index] ? 0 : 1 }
        }
    }
    switch a.dtype.byteSize {
    case 1: compare(UInt8.self)
    case 2: compare(UInt16.self)
    case 4: compare(UInt32.self)
    case 8: compare(UInt64.self)
    default: throw TensorError.unsupportedDType("bitsDiffer", a.dtype)
    }
    return result
}

/// Whether every set element of BOOL `inner` is set in BOOL `outer` too.
public func maskIsInside(_ inner: Tensor, _ outer: Tensor) throws -> Bool {
    guard inner.count == outer.count, inner.dtype == .bool, outer.dtype == .bool else {
        throw TensorError.shapeMismatch("maskIsInside", inner.shape, outer.shape)
    }
    let a = UnsafePointer(inner.data.assumingMemoryBound(to: UInt8.self)), b = UnsafePointer(outer.data.assumingMemoryBound(to: UInt8.self))
    let chunks = (inner.count + Parallel.chunkSize - 1) / Parallel.chunkSize
    let outside = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, chunks))
    defer { outside.deallocate() }
    Parallel.forEachChunk(count: inner.count) { range in
        var any: UInt8 = 0
        for index in range { any |= a[index] & ~b[index] }
        outside[range.lowerBound / Parallel.chunkSize] = any
    }
    return !(0..<chunks).contains { outside[$0] != 0 }
}

/// Calls `body(i)` for each set element `i` in `range` of BOOL bytes `mask`, in order.
/// Eight bytes at a time, skipping zero words: masks of sparse deltas are mostly zeros.
@inlinable @inline(__always)
public func forEachSet(_ mask: UnsafePointer<UInt8>, in range: Range<Int>, _ body: (Int) -> Void) {
    var index = range.lowerBound
    while index < range.upperBound && index & 7 != 0 {
        if mask[index] != 0 { body(index) }
        index += 1
    }
    while index + 8 <= range.upperBound {
        var word = UnsafeRawPointer(mask + index).loadUnaligned(as: UInt64.self)
        while word != 0 {
            let lowest = word.trailingZeroBitCount & ~7
            body(index + lowest >> 3)
            word &= ~(0xFF << UInt64(lowest))
        }
        index += 8
    }
    while index < range.upperBound {
        if mask[index] != 0 { body(index) }
        index += 1
    }
}

/// Set elements of BOOL `mask` per `Parallel` chunk, and their running totals before each chunk.
private func chunkOffsets(_ mask: UnsafePointer<UInt8>, count: Int) -> (offsets: [Int], total: Int) {
    let chunks = (count + Parallel.chunkSize - 1) / Parallel.chunkSize
    var counts = [Int](repeating: 0, count: chunks)
    counts.withUnsafeMutableBufferPointer { buffer in
        let target = buffer.baseAddress!
        Parallel.forEachChunk(count: count) { range in
            var n = 0, index = range.lowerBound
            // Eight 0/1 bytes at a time: their sum is the top byte of the word times 0x0101...01.
            while index + 8 <= range.upperBound {
                let word = UnsafeRawPointer(mask + index).loadUnaligned(as: UInt64.self) & 0x0101_0101_0101_0101
                n &+= Int((word &* 0x0101_0101_0101_0101) >> 56)
                index += 8
            }
            while index < range.upperBound { n &+= Int(mask[index] & 1); index += 1 }
            target[range.lowerBound / Parallel.chunkSize] = n
        }
    }
    var offsets = [Int](repeating: 0, count: chunks), total = 0
    for chunk in 0..<chunks { offsets[chunk] = total; total += counts[chunk] }
    return (offsets, total)
}

/// Number of set elements of a BOOL mask.
public func maskCount(_ mask: Tensor) -> Int {
    chunkOffsets(UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self)), count: mask.count).total
}

/// The elements of `source` where BOOL `mask` is set, in element order: a 1-D tensor.
public func maskedGather(_ source: Tensor, where mask: Tensor) throws -> Tensor {
    guard mask.count == source.count, mask.dtype == .bool else { throw TensorError.shapeMismatch("maskedGather", mask.shape, source.shape) }
    let bits = UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self))
    let (offsets, total) = chunkOffsets(bits, count: mask.count)
    let result = try Tensor(uninitialized: [total], dtype: source.dtype)
    let size = source.dtype.byteSize, from = UnsafeRawPointer(source.data), to = result.data
    Parallel.forEachChunk(count: mask.count) { range in
        var next = offsets[range.lowerBound / Parallel.chunkSize]
        forEachSet(bits, in: range) { index in
            (to + next * size).copyMemory(from: from + index * size, byteCount: size)
            next += 1
        }
    }
    return result
}

/// Writes `values` (1-D, in element order) into `target` where BOOL `mask` is set.
public func maskedScatter(_ values: Tensor, where mask: Tensor, into target: Tensor) throws {
    guard mask.count == target.count, mask.dtype == .bool, values.dtype == target.dtype, target.isWritable else {
        throw TensorError.shapeMismatch("maskedScatter", mask.shape, target.shape)
    }
    let bits = UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self))
    let (offsets, total) = chunkOffsets(bits, count: mask.count)
    guard total == values.count else {
        throw TensorError.invalid("maskedScatter: the mask selects \(total) elements, \(values.count) values given")
    }
    let size = target.dtype.byteSize, from = UnsafeRawPointer(values.data), to = target.data
    Parallel.forEachChunk(count: mask.count) { range in
        var next = offsets[range.lowerBound / Parallel.chunkSize]
        forEachSet(bits, in: range) { index in
            (to + index * size).copyMemory(from: from + next * size, byteCount: size)
            next += 1
        }
    }
}
