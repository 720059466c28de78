import CKernels

/// The fused pass with a given mask (the host's half of a `score` plugin): a BOOL mask over
/// BF16 or F32 on the wide DARE kernels, anything else on the general fused block pass,
/// which also serves DARE with mixed dtypes.

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
    if mask.dtype == .bool, base.dtype == finetuned.dtype, (dtype ?? base.dtype) == base.dtype, base.shape == finetuned.shape,
       let kernel = wideDareKernel(base.dtype) {
        return try fusedMaskWide(base, finetuned, mask, scale, merged: output == .merged, measure: measure, kernel)
    }
    return try fusedDelta("fusedMask", base: base, finetuned: finetuned, output: output, dtype: dtype, measure: measure) { range, delta in
        if mask.dtype == .bool {
            keepMasked(delta, range, mask, scale)
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: fusedBlock) { buffer in
                let factors = buffer.baseAddress!
                loadFloats(mask.data + range.lowerBound * mask.dtype.byteSize, dtype: mask.dtype, into: factors, count: range.count)
                for index in 0..<range.count { delta[index] *= factors[index] * scale }
            }
        }
    }
}

/// `delta[i] * scale` where BOOL `mask` keeps element `range.lowerBound + i`, else 0.
@inline(__always)
private func keepMasked(_ delta: UnsafeMutablePointer<Float>, _ range: Range<Int>, _ mask: Tensor, _ scale: Float) {
    let bytes = mask.data.assumingMemoryBound(to: UInt8.self) + range.lowerBound
    for index in 0..<range.count { delta[index] = bytes[index] != 0 ? delta[index] * scale : 0 }
}

/// The BOOL-mask pass on the wide DARE kernels for BF16 or F32 (inputs and output of one
/// dtype): the keep lanes come from the mask, nothing is drawn. The groups the kernel flags
/// (a NaN result) and each chunk's last partial group take the general pass: same bits.
private func fusedMaskWide(_ base: Tensor, _ finetuned: Tensor, _ mask: Tensor, _ scale: Float, merged: Bool, measure: Bool,
                           _ kernel: WideDareKernel) throws -> (Tensor, DeltaComparison?) {
    let result = try Tensor(uninitialized: base.shape, dtype: base.dtype)
    let tensors = DareTensors(base: base, finetuned: finetuned, output: result)
    let measured = MeasuredChunks(count: base.count, active: measure)
    let stream = base.count >= streamingThreshold && ck_has_streaming_stores() != 0
    let args = ck_dare_args(base: base.data, finetuned: finetuned.data, output: result.data, seed: 0, name_hash: 0, high: 0, low: 0,
                            scale: scale, divide: 0, merged: merged ? 1 : 0, stream: 0, sums: nil,
                            mask: UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self)))
    func general(_ range: Range<Int>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * fusedBlock) { buffer in
            fusedBlockPass(base, finetuned, result, range, merged: merged, b: buffer.baseAddress!, d: buffer.baseAddress! + fusedBlock, f: nil) {
                keepMasked($1, $0, mask, scale)
            }
        }
    }
    Parallel.forEachChunk(count: base.count) { range in
        let full = range.lowerBound + (range.count & ~63)
        let figures = wideGroups(kernel, tensors, groups: range.lowerBound / 64..<full / 64, args, stream: stream, measure: measure) {
            general($0..<$0 + 64)
        }
        if full < range.upperBound { general(full..<range.upperBound) }
        measured.finish(range, figures, tensors, merged: merged)
    }
    return (result, measured.total)
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
            fusedBlockPass(base, finetuned, result, start..<start + n, merged: merged, b: b, d: d, f: measure ? f : nil, transform)
            let target = result.data + start * outputType.byteSize
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

/// One block of the general fused pass (at most `fusedBlock` elements): `finetuned - base`
/// in f32 into `d`, `transform`, `base +` it where merged, stored in `result`'s dtype. `b`
/// keeps the base's values, and `f` (if given) the fine-tuned ones.
@inline(__always)
private func fusedBlockPass(_ base: Tensor, _ finetuned: Tensor, _ result: Tensor, _ range: Range<Int>, merged: Bool,
                            b: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>, f: UnsafeMutablePointer<Float>?,
                            _ transform: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    let start = range.lowerBound, n = range.count
    loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
    loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: d, count: n)
    f?.update(from: d, count: n)
    for index in 0..<n { d[index] -= b[index] }
    transform(range, d)
    if merged { for index in 0..<n { d[index] += b[index] } }
    storeFloats(d, into: result.data + start * result.dtype.byteSize, dtype: result.dtype, count: n)
}
