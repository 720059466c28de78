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

/// Compares `D = finetuned - base` with the pruned delta held by `output`: the delta
/// itself (`isMerged` false) or `base + D'` (`isMerged` true, so `D' = output - base`).
/// Chunks are fixed by the element count and summed in chunk order, so the figures do
/// not depend on the thread count. Within a block the sums run in f32 SIMD lanes (each
/// lane adds 64 values) and block totals in f64; a block with a non-finite value is
/// redone element by element, so NaN and infinity are counted and left out of the sums.
public func compareDelta(base: Tensor, finetuned: Tensor, output: Tensor, isMerged: Bool) throws -> DeltaComparison {
    for tensor in [finetuned, output] where tensor.shape != base.shape {
        throw TensorError.shapeMismatch("compareDelta", tensor.shape, base.shape)
    }
    try requireComputable("compareDelta", base.dtype, finetuned.dtype, output.dtype)
    let chunks = (base.count + Parallel.chunkSize - 1) / Parallel.chunkSize
    var partials = [DeltaComparison](repeating: DeltaComparison(), count: chunks)
    partials.withUnsafeMutableBufferPointer { partials in
        Parallel.forEachChunk(count: base.count) { range in
            partials[range.lowerBound / Parallel.chunkSize] = compareRange(base, finetuned, output, range, isMerged: isMerged)
        }
    }
    return partials.reduce(into: DeltaComparison()) { $0.merge($1) }
}

/// Elements to compare per block (`compareDelta`'s unit; a fused pass that measures as it
/// goes hands over whole blocks of this size).
let comparisonBlock = 1024

/// The figures of `range` (a chunk, or a block of one), block by block from its start.
func compareRange(_ base: Tensor, _ finetuned: Tensor, _ output: Tensor, _ range: Range<Int>, isMerged: Bool) -> DeltaComparison {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * comparisonBlock) { buffer in
        let b = buffer.baseAddress!, f = b + comparisonBlock, o = f + comparisonBlock
        var total = DeltaComparison()
        var start = range.lowerBound
        while start < range.upperBound {
            let n = Swift.min(comparisonBlock, range.upperBound - start)
            loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
            loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: f, count: n)
            loadFloats(output.data + start * output.dtype.byteSize, dtype: output.dtype, into: o, count: n)
            total.merge(compareFloats(b, f, o, n, isMerged: isMerged))
            start += n
        }
        return total
    }
}

/// The figures of one block (at most `comparisonBlock` elements) of widened values: in f32
/// lanes, or element by element in f64 when a lane sum is not finite.
func compareFloats(_ b: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ o: UnsafePointer<Float>, _ n: Int,
                   isMerged: Bool) -> DeltaComparison {
    let block = compareBlock(b, f, o, n, isMerged: isMerged)
    return block.isFinite ? block : compareBlockPrecisely(b, f, o, n, isMerged: isMerged)
}

extension DeltaComparison {
    /// The figures of `count` elements summed in sixteen f32 lanes (block totals in f64).
    init(count: Int, sumBefore: SIMD16<Float>, squaresBefore: SIMD16<Float>, sumAfter: SIMD16<Float>,
         squaresAfter: SIMD16<Float>, error: SIMD16<Float>, nonZeroBefore: SIMD16<UInt32>, nonZeroAfter: SIMD16<UInt32>) {
        self.init()
        self.count = count
        self.sumBefore = Double(sumBefore.lowHalf.sum()) + Double(sumBefore.highHalf.sum())
        self.squaresBefore = Double(squaresBefore.lowHalf.sum()) + Double(squaresBefore.highHalf.sum())
        self.sumAfter = Double(sumAfter.lowHalf.sum()) + Double(sumAfter.highHalf.sum())
        self.squaresAfter = Double(squaresAfter.lowHalf.sum()) + Double(squaresAfter.highHalf.sum())
        squaredError = Double(error.lowHalf.sum()) + Double(error.highHalf.sum())
        self.nonZeroBefore = Int(nonZeroBefore.wrappedSum())
        self.nonZeroAfter = Int(nonZeroAfter.wrappedSum())
    }

    /// False when a lane sum overflowed or met NaN: the block is then redone precisely.
    var isFinite: Bool { (sumBefore + squaresBefore + sumAfter + squaresAfter + squaredError).isFinite }
}

/// One block in SIMD16 lanes; non-zero counts come from the magnitude bits (no masks,
/// which scalarise on the baseline SSE2 target).
@inline(__always)
private func compareBlock(_ b: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ o: UnsafePointer<Float>, _ n: Int,
                          isMerged: Bool) -> DeltaComparison {
    var sumBefore = SIMD16<Float>(), squaresBefore = SIMD16<Float>()
    var sumAfter = SIMD16<Float>(), squaresAfter = SIMD16<Float>(), error = SIMD16<Float>()
    var nonZeroBefore = SIMD16<UInt32>(), nonZeroAfter = SIMD16<UInt32>()
    let whole = n / 16 * 16
    let rawB = UnsafeRawPointer(b), rawF = UnsafeRawPointer(f), rawO = UnsafeRawPointer(o)
    var index = 0
    while index < whole {
        let x = rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        let y = rawF.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        let z = rawO.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
        let before = y - x
        let after = isMerged ? z - x : z
        let difference = after - before
        sumBefore += before; squaresBefore += before * before
        sumAfter += after; squaresAfter += after * after
        error += difference * difference
        nonZeroBefore &+= (0 &- (floatBits(before) & 0x7FFF_FFFF)) &>> 31
        nonZeroAfter &+= (0 &- (floatBits(after) & 0x7FFF_FFFF)) &>> 31
        index += 16
    }
    var block = DeltaComparison(count: whole, sumBefore: sumBefore, squaresBefore: squaresBefore, sumAfter: sumAfter,
                                squaresAfter: squaresAfter, error: error, nonZeroBefore: nonZeroBefore, nonZeroAfter: nonZeroAfter)
    if whole < n {
        block.merge(compareBlockPrecisely(b + whole, f + whole, o + whole, n - whole, isMerged: isMerged))
    }
    return block
}

/// One block element by element in f64, counting non-finite values.
private func compareBlockPrecisely(_ b: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ o: UnsafePointer<Float>, _ n: Int,
                                   isMerged: Bool) -> DeltaComparison {
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
    return block
}
