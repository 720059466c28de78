// Ascending ranks within rows or a whole tensor, for methods whose keep probability grows
// with the rank of |delta| (DELLA's MagPrune). Same order as the top-k kernels: NaN
// below every number, -0 equal to +0, and among equal values the lower index ranks
// higher, so the entries of rank >= n - k are exactly the ones `topKMask` keeps.

/// F32 ranks `0 ..< n` of each row of a 1-D or 2-D tensor (`perRow`), or of the whole
/// tensor (any shape): 0 for the smallest, n - 1 for the largest.
public func ranks(_ a: Tensor, perRow: Bool) throws -> Tensor {
    try requireComputable("ranks", a.dtype)
    let rows: Int, cols: Int
    if perRow {
        guard let shape = a.matrixShape else {
            throw TensorError.invalid("ranks: per-row ranks need a 1-D or 2-D tensor, got shape \(a.shape.shapeText)")
        }
        (rows, cols) = shape
    } else {
        (rows, cols) = (1, a.count)
    }
    guard cols <= Int(UInt32.max) else { throw TensorError.invalid("ranks: \(cols) elements in a row are too many to rank") }
    let result = try Tensor(zeros: a.shape, dtype: .f32)
    guard rows > 0, cols > 0 else { return result }
    let base = UnsafeRawPointer(a.data), dtype = a.dtype
    let output = result.data.assumingMemoryBound(to: Float.self)
    let rowsPerTask = Swift.max(1, Parallel.chunkSize / cols)
    Parallel.forEachChunk(count: rows, chunk: rowsPerTask) { range in
        let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: cols)
        let order = UnsafeMutablePointer<UInt64>.allocate(capacity: cols)
        defer { keys.deallocate(); order.deallocate() }
        for row in range {
            computeKeys(base, dtype, row * cols, cols, into: keys)
            // One sortable word per entry: the key above, the complemented index below, so
            // that equal keys order by descending index (the lower index ranks higher).
            for index in 0..<cols { order[index] = UInt64(keys[index]) << 32 | UInt64(UInt32.max - UInt32(index)) }
            var words = UnsafeMutableBufferPointer(start: order, count: cols)
            words.sort()
            let target = output + row * cols
            for rank in 0..<cols { target[Int(UInt32.max - UInt32(truncatingIfNeeded: order[rank]))] = Float(rank) }
        }
    }
    return result
}
