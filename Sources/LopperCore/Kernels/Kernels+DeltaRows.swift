// Per-row moments of a delta straight from base and fine-tuned weights, without an
// F32 copy of the delta: what DAREx-q's choice of q needs (S_i = sum_j c_ij and
// Q_i = sum_j c_ij^2 with c_ij = (W1 - W0)_ij * x_j).

private let rowBlock = 1024

/// For each row i of `finetuned - base` ([r, c]; 1-D is one row): the sum and the sum
/// of squares of `delta_ij * weights[j]` (`weights` nil: 1). Blocks of 1024 columns
/// are summed in f32 SIMD lanes (64 values per lane), then in f64.
public func deltaRowMoments(base: Tensor, finetuned: Tensor, columnWeights: Tensor? = nil) throws -> (sums: [Double], squares: [Double]) {
    guard base.shape == finetuned.shape else { throw TensorError.shapeMismatch("deltaRowMoments", finetuned.shape, base.shape) }
    try requireComputable("deltaRowMoments", base.dtype, finetuned.dtype)
    guard let (rows, cols) = base.matrixShape else {
        throw TensorError.invalid("deltaRowMoments: expects a 1-D or 2-D tensor, got shape \(base.shape.shapeText)")
    }
    var weights: [Float]?
    if let columnWeights {
        try requireComputable("deltaRowMoments", columnWeights.dtype)
        guard columnWeights.count == cols else {
            throw TensorError.invalid("deltaRowMoments: needs \(cols) column weights for shape \(base.shape.shapeText), got \(columnWeights.count)")
        }
        weights = columnWeights.floats()
    }
    var sums = [Double](repeating: 0, count: rows), squares = sums
    sums.withUnsafeMutableBufferPointer { sums in
        squares.withUnsafeMutableBufferPointer { squares in
            let rowsPerTask = Swift.max(1, Parallel.chunkSize / Swift.max(1, cols))
            Parallel.forEachChunk(count: rows, chunk: rowsPerTask) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * rowBlock) { buffer in
                    let b = buffer.baseAddress!, f = b + rowBlock
                    for row in range {
                        var sum = 0.0, square = 0.0
                        var start = 0
                        while start < cols {
                            let n = Swift.min(rowBlock, cols - start), offset = row * cols + start
                            loadFloats(base.data + offset * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
                            loadFloats(finetuned.data + offset * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: f, count: n)
                            if let weights {
                                for index in 0..<n { f[index] = (f[index] - b[index]) * weights[start + index] }
                            } else {
                                for index in 0..<n { f[index] -= b[index] }
                            }
                            let (s, q) = blockMoments(f, n)
                            sum += s; square += q
                            start += n
                        }
                        sums[row] = sum; squares[row] = square
                    }
                }
            }
        }
    }
    return (sums, squares)
}

@inline(__always)
private func blockMoments(_ values: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
    var sum = SIMD16<Float>(), square = SIMD16<Float>()
    let whole = n / 16 * 16, raw = UnsafeRawPointer(values)
    var index = 0
    while index < whole {
        let x = raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        sum += x; square += x * x
        index += 16
    }
    var s = Double(sum.lowHalf.sum()) + Double(sum.highHalf.sum())
    var q = Double(square.lowHalf.sum()) + Double(square.highHalf.sum())
    while index < n { let x = Double(values[index]); s += x; q += x * x; index += 1 }
    return (s, q)
}
