/// The fused pass with a given mask (the host's half of a `score` plugin), and the general
/// fused block pass under it and under DARE with mixed dtypes.

/// `base + mask * (finetuned - base) * scale` (merged) or the masked delta, the mask BOOL
/// (kept or not) or a computable tensor of per-element factors.
public func fusedMask(base: Tensor, finetuned: Tensor, mask: Tensor, scale: Float,
                      output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    try fusedMask(base, finetuned, mask, scale, output, dtype, measure: false).0
}

/// `fusedMask` and its `compareDelta` figures, measured in the same pass (the same figures).
public func fusedMaskMeasured(base: Tensor, finetuned: Tensor, mask: Tensor, scale: Float, output: DeltaOutput = .merged,
                              dtype: DType? = nil) throws -> (output: Tensor, comparison: DeltaComparison) {
    let (result, comparison) = try fusedMask(base, finetuned, mask, scale, output, dtype, measure: true)
    return (result, comparison!)
}

private func fusedMask(_ base: Tensor, _ finetuned: Tensor, _ mask: Tensor, _ scale: Float, _ output: DeltaOutput,
                       _ dtype: DType?, measure: Bool) throws -> (Tensor, DeltaComparison?) {
    guard mask.shape == base.shape else { throw TensorError.shapeMismatch("fusedMask", mask.shape, base.shape) }
    guard mask.dtype == .bool || mask.dtype.isComputable else { throw TensorError.unsupportedDType("fusedMask", mask.dtype) }
    return try fusedDelta("fusedMask", base: base, finetuned: finetuned, output: output, dtype: dtype, measure: measure) { range, delta in
        if mask.dtype == .bool {
            let bytes = mask.data.assumingMemoryBound(to: UInt8.self) + range.lowerBound
            for index in 0..<range.count { delta[index] = bytes[index] != 0 ? delta[index] * scale : 0 }
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: fusedBlock) { buffer in
                let factors = buffer.baseAddress!
                loadFloats(mask.data + range.lowerBound * mask.dtype.byteSize, dtype: mask.dtype, into: factors, count: range.count)
                for index in 0..<range.count { delta[index] *= factors[index] * scale }
            }
        }
    }
}

/// Elements per block of the general fused pass (a multiple of `comparisonBlock`).
let fusedBlock = 2048

/// Runs `transform` on each block of `finetuned - base` (in f32, in place), then writes
/// it, or `base +` it, in the output dtype. With `measure`, also `compareDelta`'s figures
/// of each block as stored, from the same blocks (the same figures).
func fusedDelta(_ operation: String, base: Tensor, finetuned: Tensor, output: DeltaOutput, dtype: DType?, measure: Bool,
                _ transform: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) throws -> (Tensor, DeltaComparison?) {
    guard base.shape == finetuned.shape else { throw TensorError.shapeMismatch(operation, finetuned.shape, base.shape) }
    for type in [base.dtype, finetuned.dtype, dtype ?? finetuned.dtype] where !type.isComputable {
        throw TensorError.unsupportedDType(operation, type)
    }
    let outputType = dtype ?? finetuned.dtype
    let result = try Tensor(uninitialized: base.shape, dtype: outputType)
    let measured = MeasuredChunks(count: base.count, active: measure)
    let merged = output == .merged
    Parallel.forEachChunk(count: base.count) { chunk in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * fusedBlock) { buffer in
        let b = buffer.baseAddress!, d = b + fusedBlock, f = d + fusedBlock, o = f + fusedBlock
        var figures = DeltaComparison()
        var start = chunk.lowerBound
        while start < chunk.upperBound {
            let n = min(fusedBlock, chunk.upperBound - start)
            loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
            loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: d, count: n)
            if measure { f.update(from: d, count: n) }
            for index in 0..<n { d[index] -= b[index] }
            transform(start..<start + n, d)
            if merged { for index in 0..<n { d[index] += b[index] } }
            let target = result.data + start * outputType.byteSize
            storeFloats(d, into: target, dtype: outputType, count: n)
            if measure {
                loadFloats(target, dtype: outputType, into: o, count: n)
                for first in stride(from: 0, to: n, by: comparisonBlock) {
                    figures.merge(compareFloats(b + first, f + first, o + first, min(comparisonBlock, n - first), isMerged: merged))
                }
            }
            start += n
        }
        measured.record(chunk, figures)
      }
    }
    return (result, measured.total)
}
