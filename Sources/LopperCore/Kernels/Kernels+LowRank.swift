// The product of two low-rank factors, as a LoRA adapter's delta: `scale * B @ A`
// (or its transpose), optionally added to a base weight. The rank is small (tens), so
// each output row is a sum of `rank` scaled rows: one pass over the output.

/// `scale * (B @ A)` in F32, shape [out, in] for `b` [out, r] and `a` [r, in]; with
/// `transposed` its transpose [in, out] (PEFT's `fan_in_fan_out`, and embeddings).
/// With `base` (of the result's shape, any computable dtype) returns `base + product`,
/// the product summed first and added once, so `(base + product) - base` keeps the
/// product to within one F32 rounding of the base. Rows are independent and summed in
/// rank order, so the result does not depend on the thread count.
public func lowRankProduct(b: Tensor, a: Tensor, scale: Float, transposed: Bool = false, base: Tensor? = nil) throws -> Tensor {
    guard a.rank == 2, b.rank == 2, b.shape[1] == a.shape[0] else {
        throw TensorError.shapeMismatch("lowRankProduct (B @ A)", b.shape, a.shape)
    }
    try requireComputable("lowRankProduct", a.dtype, b.dtype)
    let rank = a.shape[0], outputs = b.shape[0], inputs = a.shape[1]
    // Result = left @ right with left [rows, rank] (scale folded in) and right [rank, columns].
    let rows = transposed ? inputs : outputs, columns = transposed ? outputs : inputs
    if let base {
        guard base.shape == [rows, columns] else { throw TensorError.shapeMismatch("lowRankProduct (base)", base.shape, [rows, columns]) }
        try requireComputable("lowRankProduct", base.dtype)
    }
    let bFloats = try widened(b), aFloats = try widened(a)
    var left = [Float](repeating: 0, count: rows * rank), right = [Float](repeating: 0, count: rank * columns)
    for i in 0..<outputs {
        for k in 0..<rank {
            let value = scale * bFloats[i * rank + k]
            if transposed { right[k * outputs + i] = value } else { left[i * rank + k] = value }
        }
    }
    for k in 0..<rank {
        for j in 0..<inputs {
            let value = aFloats[k * inputs + j]
            if transposed { left[j * rank + k] = value } else { right[k * inputs + j] = value }
        }
    }
    let result = try Tensor(uninitialized: [rows, columns], dtype: .f32)
    let out = result.data.assumingMemoryBound(to: Float.self)
    left.withUnsafeBufferPointer { left in right.withUnsafeBufferPointer { right in
        let rowsPerChunk = max(1, Parallel.chunkSize / max(1, columns))
        Parallel.forEachChunk(count: rows, chunk: rowsPerChunk) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { scratch.deallocate() }
            for row in range {
                let target = out + row * columns
                target.initialize(repeating: 0, count: columns)
                for k in 0..<rank {
                    let factor = left[row * rank + k]
                    let source = right.baseAddress! + k * columns
                    for j in 0..<columns { target[j] += factor * source[j] }
                }
                if let base {
                    loadFloats(base.data + row * columns * base.dtype.byteSize, dtype: base.dtype, into: scratch, count: columns)
                    for j in 0..<columns { target[j] = scratch[j] + target[j] }
                }
            }
        }
    } }
    return result
}

private func widened(_ tensor: Tensor) throws -> [Float] {
    var values = [Float](repeating: 0, count: tensor.count)
    values.withUnsafeMutableBufferPointer { loadFloats(tensor.data, dtype: tensor.dtype, into: $0.baseAddress!, count: tensor.count) }
    return values
}
