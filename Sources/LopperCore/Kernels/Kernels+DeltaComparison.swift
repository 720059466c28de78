// One pass over base, fine-tuned and a pruning pass's output that measures what the
// pruning did to the delta: the figures of the run report, without keeping either
// delta in memory.

/// Sums over the original delta `D = finetuned - base` and the pruned one `D'`.
public struct DeltaComparison: Sendable, Equatable {
    public var count = 0
    public var nonZeroBefore = 0, nonZeroAfter = 0
    public var sumBefore = 0.0, squaresBefore = 0.0
    public var sumAfter = 0.0, squaresAfter = 0.0
    /// Sum of (D' - D)^2.
    public var squaredError = 0.0
    /// Non-finite values in D (base or fine-tuned) and in D' (NaN or infinite); they
    /// are left out of the sums.
    public var nonFiniteBefore = 0, nonFiniteAfter = 0

    public init() {}

    public var meanBefore: Double { count > 0 ? sumBefore / Double(count) : 0 }
    public var meanAfter: Double { count > 0 ? sumAfter / Double(count) : 0 }
    public var stdBefore: Double { spread(sumBefore, squaresBefore) }
    public var stdAfter: Double { spread(sumAfter, squaresAfter) }
    /// Fraction of entries whose pruned delta is non-zero.
    public var keptFraction: Double { count > 0 ? Double(nonZeroAfter) / Double(count) : 1 }
    /// ||D' - D|| / ||D|| (0 when D is zero and D' equals it).
    public var relativeL2Error: Double {
        squaresBefore > 0 ? (squaredError / squaresBefore).squareRoot() : (squaredError > 0 ? .infinity : 0)
    }

    private func spread(_ sum: Double, _ squares: Double) -> Double {
        guard count > 0 else { return 0 }
        let mean = sum / Double(count)
        return Swift.max(0, squares / Double(count) - mean * mean).squareRoot()
    }

    mutating func merge(_ other: DeltaComparison) {
        count += other.count
        nonZeroBefore += other.nonZeroBefore; nonZeroAfter += other.nonZeroAfter
        sumBefore += other.sumBefore; squaresBefore += other.squaresBefore
        sumAfter += other.sumAfter; squaresAfter += other.squaresAfter
        squaredError += other.squaredError
        nonFiniteBefore += other.nonFiniteBefore; nonFiniteAfter += other.nonFiniteAfter
    }
}

private let comparisonBlock = 4096

/// Compares `D = finetuned - base` with the pruned delta held by `output`: the delta
/// itself (`isMerged` false) or `base + D'` (`isMerged` true, so `D' = output - base`).
/// Chunks are fixed by the element count and summed in chunk order, so the figures do
/// not depend on the thread count.
public func compareDelta(base: Tensor, finetuned: Tensor, output: Tensor, isMerged: Bool) throws -> DeltaComparison {
    for tensor in [finetuned, output] where tensor.shape != base.shape {
        throw TensorError.shapeMismatch("compareDelta", tensor.shape, base.shape)
    }
    try requireComputable("compareDelta", base.dtype, finetuned.dtype, output.dtype)
    let chunks = (base.count + Parallel.chunkSize - 1) / Parallel.chunkSize
    var partials = [DeltaComparison](repeating: DeltaComparison(), count: chunks)
    partials.withUnsafeMutableBufferPointer { partials in
        Parallel.forEachChunk(count: base.count) { range in
            let b = UnsafeMutablePointer<Float>.allocate(capacity: 3 * comparisonBlock)
            defer { b.deallocate() }
            let f = b + comparisonBlock, o = f + comparisonBlock
            var total = DeltaComparison()
            var start = range.lowerBound
            while start < range.upperBound {
                let n = Swift.min(comparisonBlock, range.upperBound - start)
                loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
                loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: f, count: n)
                loadFloats(output.data + start * output.dtype.byteSize, dtype: output.dtype, into: o, count: n)
                var block = DeltaComparison()
                block.count = n
                for index in 0..<n {
                    let before = Double(f[index]) - Double(b[index])
                    let after = isMerged ? Double(o[index]) - Double(b[index]) : Double(o[index])
                    if before != 0 { block.nonZeroBefore += 1 }
                    if after != 0 { block.nonZeroAfter += 1 }
                    if !before.isFinite { block.nonFiniteBefore += 1 }
                    if !after.isFinite { block.nonFiniteAfter += 1 }
                    if !before.isFinite || !after.isFinite { continue }
                    block.sumBefore += before; block.squaresBefore += before * before
                    block.sumAfter += after; block.squaresAfter += after * after
                    block.squaredError += (after - before) * (after - before)
                }
                total.merge(block)
                start += n
            }
            partials[range.lowerBound / Parallel.chunkSize] = total
        }
    }
    return partials.reduce(into: DeltaComparison()) { $0.merge($1) }
}
