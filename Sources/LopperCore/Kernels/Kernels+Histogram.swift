// Histograms with equal-width bins.
import Synchronization

/// Counts of a histogram over [lower, upper] and of the values outside it.
public struct Histogram: Sendable, Equatable {
    /// counts[i] is the number of values in bin i (see `histogram` for the bin rule).
    public var counts: [Int]
    public var lower: Float
    public var upper: Float
    /// Values below `lower` (-Inf included), above `upper` (+Inf included), and NaN.
    public var below: Int
    public var above: Int
    public var nan: Int

    public init(counts: [Int], lower: Float, upper: Float, below: Int, above: Int, nan: Int) {
        self.counts = counts
        self.lower = lower
        self.upper = upper
        self.below = below
        self.above = above
        self.nan = nan
    }
}

/// Largest number of bins (bin indices are computed exactly in f32 below 2^22).
public let histogramMaxBins = 1 << 22

/// Histogram of `a` with `bins` equal bins over `range` (nil: from the smallest to the
/// largest finite value). Bin rule, in f32: `scale = Float(bins) / (upper - lower)`,
/// `bin = min(bins - 1, Int((x - lower) * scale))` for lower <= x <= upper, so the last
/// bin includes `upper`. A zero-width range puts every in-range value into bin 0; a range
/// whose width overflows f32 is refused.
public func histogram(_ a: Tensor, bins: Int, range: ClosedRange<Float>? = nil) throws -> Histogram {
    try requireComputable("histogram", a.dtype)
    guard bins >= 1 && bins <= histogramMaxBins else {
        throw TensorError.invalid("histogram: bins must be in 1...\(histogramMaxBins), got \(bins)")
    }
    let lower: Float, upper: Float
    if let range {
        guard range.lowerBound.isFinite, range.upperBound.isFinite else {
            throw TensorError.invalid("histogram: range \(range.lowerBound)...\(range.upperBound) must be finite")
        }
        (lower, upper) = (range.lowerBound, range.upperBound)
    } else {
        let extrema = try reduce("histogram", a, ExtremaReducer(finiteOnly: true))
        let anyFinite = extrema.minimum <= extrema.maximum
        (lower, upper) = anyFinite ? (extrema.minimum, extrema.maximum) : (0, 0)
    }
    let width = upper - lower
    guard width.isFinite else {
        throw TensorError.invalid("histogram: range \(lower)...\(upper) is wider than the largest Float")
    }
    let scale: Float = width > 0 ? Float(bins) / width : 0
    guard scale.isFinite else {
        throw TensorError.invalid("histogram: range \(lower)...\(upper) is too narrow for \(bins) bins")
    }
    // Slots 0..<bins are the bins; then below, above, NaN.
    let slots = bins + 3
    let totals = Mutex([Int](repeating: 0, count: slots))
    let base = UnsafeRawPointer(a.data), dtype = a.dtype
    let chunk = Swift.max(Parallel.chunkSize, 4 * bins)
    Parallel.forEachChunk(count: a.count, chunk: chunk) { range in
        // Four interleaved tables: runs of values in one bin do not wait on each other's increments.
        var counts = [UInt32](repeating: 0, count: 4 * slots)
        counts.withUnsafeMutableBufferPointer { counts in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: kernelBlock) { slotsOf in
                let tables = (counts.baseAddress!, counts.baseAddress! + slots, counts.baseAddress! + 2 * slots,
                              counts.baseAddress! + 3 * slots)
                var start = range.lowerBound
                while start < range.upperBound {
                    let length = Swift.min(kernelBlock, range.upperBound - start)
                    binIndices(base, dtype, start, length, lower: lower, upper: upper, scale: scale, bins: bins,
                               into: slotsOf.baseAddress!)
                    var index = 0
                    while index &+ 4 <= length {
                        tables.0[Int(slotsOf[index])] &+= 1
                        tables.1[Int(slotsOf[index &+ 1])] &+= 1
                        tables.2[Int(slotsOf[index &+ 2])] &+= 1
                        tables.3[Int(slotsOf[index &+ 3])] &+= 1
                        index &+= 4
                    }
                    while index < length { tables.0[Int(slotsOf[index])] &+= 1; index &+= 1 }
                    start += length
                }
            }
        }
        totals.withLock { totals in
            for slot in 0..<slots {
                totals[slot] += Int(counts[slot]) + Int(counts[slots + slot]) + Int(counts[2 * slots + slot]) + Int(counts[3 * slots + slot])
            }
        }
    }
    let counts = totals.withLock { $0 }
    return Histogram(counts: Array(counts[0..<bins]), lower: lower, upper: upper,
                     below: counts[bins], above: counts[bins + 1], nan: counts[bins + 2])
}

/// Slot of each of `length` elements at `start`: its bin, or bins / bins+1 / bins+2 for
/// below / above / NaN.
private func binIndices(_ base: UnsafeRawPointer, _ dtype: DType, _ start: Int, _ length: Int,
                        lower: Float, upper: Float, scale: Float, bins: Int, into slots: UnsafeMutablePointer<Int32>) {
    switch dtype {
    case .f32: binIndices(F32Lanes.self, base, start, length, lower: lower, upper: upper, scale: scale, bins: bins, into: slots)
    case .bf16: binIndices(BF16Lanes.self, base, start, length, lower: lower, upper: upper, scale: scale, bins: bins, into: slots)
    case .f16: binIndices(F16Lanes.self, base, start, length, lower: lower, upper: upper, scale: scale, bins: bins, into: slots)
    default: binIndices(F64Lanes.self, base, start, length, lower: lower, upper: upper, scale: scale, bins: bins, into: slots)
    }
}

@inline(__always)
private func binIndices<Lanes: FloatLanes>(_: Lanes.Type, _ base: UnsafeRawPointer, _ start: Int, _ length: Int,
                                           lower: Float, upper: Float, scale: Float, bins: Int,
                                           into slots: UnsafeMutablePointer<Int32>) {
    let last = SIMD16<Int32>(repeating: Int32(bins - 1)), below = Int32(bins), above = Int32(bins + 1), nan = Int32(bins + 2)
    let target = UnsafeMutableRawPointer(slots)
    var index = 0
    while index < length {
        let live = Swift.min(16, length &- index)
        let x = live == 16 ? Lanes.load(base, start &+ index) : Lanes.loadPartial(base, start &+ index, live: live)
        // Truncation of t in [0, 2^22] without a float-to-int instruction: adding 2^23
        // rounds t to the nearest integer in the low mantissa bits; step back one where
        // that rounded up.
        let t = (x - lower) * scale
        let shifted = t + 8_388_608
        var slot = signed(floatBits(shifted)) &- 0x4B00_0000
        slot &-= ones((shifted - 8_388_608) .> t)
        slot = pointwiseMin(slot, last)   // min, not a compare with a scalar: that one runs lane by lane
        slot.replace(with: below, where: x .< lower)
        slot.replace(with: above, where: x .> upper)
        slot.replace(with: nan, where: x .!= x)
        if live == 16 {
            target.storeBytes(of: slot, toByteOffset: index &* 4, as: SIMD16<Int32>.self)
        } else {
            for lane in 0..<live { slots[index &+ lane] = slot[lane] }
        }
        index &+= 16
    }
}
