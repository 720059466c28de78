// Scaling a 2-D tensor by one factor per row or per column: what structural pruning
// needs to turn a row or column mask (times a rescale factor) into a pruned delta.

/// `a[i, j] * factors[i]`: [r, c] x [r] -> F32 [r, c]. `factors` may be BOOL (0 or 1).
public func scaleRows(_ a: Tensor, _ factors: Tensor) throws -> Tensor {
    try scaleAxis("scaleRows", a, factors, alongRows: true)
}

/// `a[i, j] * factors[j]`: [r, c] x [c] -> F32 [r, c]. `factors` may be BOOL (0 or 1).
public func scaleCols(_ a: Tensor, _ factors: Tensor) throws -> Tensor {
    try scaleAxis("scaleCols", a, factors, alongRows: false)
}

private func scaleAxis(_ operation: String, _ a: Tensor, _ factors: Tensor, alongRows: Bool) throws -> Tensor {
    try requireComputable(operation, a.dtype)
    guard let (rows, cols) = a.matrixShape else {
        throw TensorError.invalid("\(operation): expects a 1-D or 2-D tensor, got shape \(a.shape.shapeText)")
    }
    let expected = alongRows ? rows : cols
    guard factors.count == expected, factors.rank <= 2 else {
        throw TensorError.invalid("\(operation): needs \(expected) factors for shape \(a.shape.shapeText), got shape \(factors.shape.shapeText)")
    }
    let scale = try factorFloats(operation, factors)
    let result = try Tensor(uninitialized: a.shape, dtype: .f32)
    let source = UnsafeRawPointer(a.data), dtype = a.dtype
    let target = result.data.assumingMemoryBound(to: Float.self)
    let rowsPerTask = Swift.max(1, Parallel.chunkSize / Swift.max(1, cols))
    scale.withUnsafeBufferPointer { scale in
        Parallel.forEachChunk(count: rows, chunk: rowsPerTask) { range in
            for row in range {
                let out = target + row * cols
                loadFloats(source + row * cols * dtype.byteSize, dtype: dtype, into: out, count: cols)
                if alongRows {
                    let factor = scale[row]
                    for column in 0..<cols { out[column] *= factor }
                } else {
                    for column in 0..<cols { out[column] *= scale[column] }
                }
            }
        }
    }
    return result
}

private func factorFloats(_ operation: String, _ factors: Tensor) throws -> [Float] {
    if factors.dtype == .bool || factors.dtype == .u8 {
        let bytes = factors.data.assumingMemoryBound(to: UInt8.self)
        return (0..<factors.count).map { bytes[$0] != 0 ? 1 : 0 }
    }
    try requireComputable(operation, factors.dtype)
    return factors.floats()
}
