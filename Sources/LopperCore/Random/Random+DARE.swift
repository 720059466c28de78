/// The fused DARE pass: one sweep per block that widens the inputs, subtracts, draws
/// the Philox bits, masks, rescales, adds back (merged output) and rounds to the
/// output dtype. No whole-tensor f32 intermediate exists.

/// What a pruning pass writes.
public enum DeltaOutput: String, Sendable {
    /// `base + pruned delta`: a model.
    case merged
    /// The pruned delta alone.
    case delta
}

private let fusedBlock = 2048

/// `base + m * (finetuned - base) * scale` (merged) or `m * (finetuned - base) * scale`
/// (delta), with `m ~ Bernoulli(keep)` drawn exactly as `bernoulliMask(shape, keep:, key:)`.
public func dareFused(base: Tensor, finetuned: Tensor, keep: Double, scale: Float, key: RandomKey,
                      output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    let threshold = try keepThreshold(keep)!
    return try fusedDelta("dare", base: base, finetuned: finetuned, output: output, dtype: dtype) { range, delta in
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: range.count)
        defer { words.deallocate() }
        if let threshold {
            Philox.words(range, key: key, into: words)
            for index in 0..<range.count { delta[index] = words[index] < threshold ? delta[index] * scale : 0 }
        } else {
            for index in 0..<range.count { delta[index] *= scale }
        }
    }
}

/// The same pass with a given mask: BOOL (kept or not) or a computable tensor of
/// per-element factors; kept entries are multiplied by `scale`.
public func maskedRescaleAdd(base: Tensor, finetuned: Tensor, mask: Tensor, scale: Float,
                             output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    guard mask.shape == base.shape else { throw TensorError.shapeMismatch("maskedRescaleAdd", mask.shape, base.shape) }
    guard mask.dtype == .bool || mask.dtype.isComputable else { throw TensorError.unsupportedDType("maskedRescaleAdd", mask.dtype) }
    return try fusedDelta("maskedRescaleAdd", base: base, finetuned: finetuned, output: output, dtype: dtype) { range, delta in
        if mask.dtype == .bool {
            let bytes = mask.data.assumingMemoryBound(to: UInt8.self) + range.lowerBound
            for index in 0..<range.count { delta[index] = bytes[index] != 0 ? delta[index] * scale : 0 }
        } else {
            let factors = UnsafeMutablePointer<Float>.allocate(capacity: range.count)
            defer { factors.deallocate() }
            loadFloats(mask.data + range.lowerBound * mask.dtype.byteSize, dtype: mask.dtype, into: factors, count: range.count)
            for index in 0..<range.count { delta[index] *= factors[index] * scale }
        }
    }
}

/// Runs `transform` on each block of `finetuned - base` (in f32, in place), then writes
/// it, or `base +` it, in the output dtype.
private func fusedDelta(_ operation: String, base: Tensor, finetuned: Tensor, output: DeltaOutput, dtype: DType?,
                        _ transform: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
    guard base.shape == finetuned.shape else { throw TensorError.shapeMismatch(operation, finetuned.shape, base.shape) }
    for type in [base.dtype, finetuned.dtype, dtype ?? finetuned.dtype] where !type.isComputable {
        throw TensorError.unsupportedDType(operation, type)
    }
    let outputType = dtype ?? finetuned.dtype
    let result = Tensor(uninitialized: base.shape, dtype: outputType)
    Parallel.forEachChunk(count: base.count) { chunk in
        let b = UnsafeMutablePointer<Float>.allocate(capacity: fusedBlock)
        let d = UnsafeMutablePointer<Float>.allocate(capacity: fusedBlock)
        defer { b.deallocate(); d.deallocate() }
        var start = chunk.lowerBound
        while start < chunk.upperBound {
            let n = min(fusedBlock, chunk.upperBound - start)
            loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
            loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: d, count: n)
            for index in 0..<n { d[index] -= b[index] }
            transform(start..<start + n, d)
            if output == .merged { for index in 0..<n { d[index] += b[index] } }
            storeFloats(d, into: result.data + start * outputType.byteSize, dtype: outputType, count: n)
            start += n
        }
    }
    return result
}
