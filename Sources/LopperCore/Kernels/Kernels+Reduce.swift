// Whole-tensor reductions. Accumulation is in f64 (see Kernels+Reducer.swift); NaN
// propagates into sum, mean, variance and norms, and min/max return NaN when any
// element is NaN. `stats` is the exception: a diagnostic that skips NaN and counts it.

/// Sum of all elements (0 for an empty tensor).
public func sum(_ a: Tensor) throws -> Double {
    try reduce("sum", a, SumReducer<Identity>()).total
}

/// Mean of all elements (NaN for an empty tensor).
public func mean(_ a: Tensor) throws -> Double {
    let total = try sum(a)
    return a.count == 0 ? .nan : total / Double(a.count)
}

/// Variance with `correction` degrees of freedom removed (0: population, 1: sample).
/// Two passes: the mean, then sums of deviations from it (with the rounding of the
/// mean corrected). NaN when count - correction <= 0.
public func variance(_ a: Tensor, correction: Int = 0) throws -> Double {
    guard correction >= 0 else { throw TensorError.invalid("variance: correction must be >= 0, got \(correction)") }
    let center = try mean(a)
    let n = Double(a.count)
    guard a.count > correction, center.isFinite else {
        return try requireComputableThen("variance", a) { .nan }
    }
    let deviations = try reduce("variance", a, CenteredReducer(center: Float(center), skipNaN: false))
    let squares = deviations.squares - deviations.sum * deviations.sum / n
    return Swift.max(0, squares) / Double(a.count - correction)
}

/// The p-norm: p = 1 (sum of |x|), 2 (Euclidean), `.infinity` (max |x|) or any p > 0.
public func norm(_ a: Tensor, p: Double = 2) throws -> Double {
    guard p > 0 else { throw TensorError.invalid("norm: p must be > 0 (1, 2, inf or another positive number), got \(p)") }
    switch p {
    case 1: return try reduce("norm", a, SumReducer<Magnitude>()).total
    case 2: return try reduce("norm", a, SumReducer<Square>()).total.squareRoot()
    case .infinity:
        let extrema = try reduce("norm", a, ExtremaReducer(finiteOnly: false))
        if extrema.sawNaN { return .nan }
        if a.count == 0 { return 0 }
        return Double(Swift.max(Swift.abs(extrema.minimum), Swift.abs(extrema.maximum)))
    default:
        return try reduce("norm", a, PowerSumReducer(p: p)).total.power(1 / p)
    }
}

/// Smallest element; NaN if any element is NaN. Throws for an empty tensor.
public func min(_ a: Tensor) throws -> Float {
    let extrema = try reduce("min", a, ExtremaReducer(finiteOnly: false))
    guard a.count > 0 else { throw TensorError.invalid("min: tensor \(a.shape.shapeText) is empty") }
    return extrema.sawNaN ? .nan : extrema.minimum
}

/// Largest element; NaN if any element is NaN. Throws for an empty tensor.
public func max(_ a: Tensor) throws -> Float {
    let extrema = try reduce("max", a, ExtremaReducer(finiteOnly: false))
    guard a.count > 0 else { throw TensorError.invalid("max: tensor \(a.shape.shapeText) is empty") }
    return extrema.sawNaN ? .nan : extrema.maximum
}

/// Numbers of NaN and of infinite elements: one pass at memory speed (a check of inputs).
public func countNonFinite(_ a: Tensor) throws -> (nan: Int, infinite: Int) {
    let counts = try reduce("countNonFinite", a, NonFiniteReducer())
    return (counts.nan, counts.infinite)
}

/// Number of elements that are not zero (NaN counts; -0 does not).
public func countNonZero(_ a: Tensor) throws -> Int {
    if a.dtype == .bool || a.dtype == .u8 || a.dtype == .i8 {
        // Masks: count non-zero bytes, chunk partials summed in chunk order.
        let chunks = (a.count + Parallel.chunkSize - 1) / Parallel.chunkSize
        var partials = [Int](repeating: 0, count: chunks)
        let bytes = a.data.assumingMemoryBound(to: UInt8.self)
        partials.withUnsafeMutableBufferPointer { results in
            Parallel.forEachChunk(count: a.count) { range in
                var total = 0
                for index in range where bytes[index] != 0 { total += 1 }
                results[range.lowerBound / Parallel.chunkSize] = total
            }
        }
        return partials.reduce(0, +)
    }
    return try reduce("countNonZero", a, NonZeroReducer()).total
}

/// Summary of a tensor from one pass.
public struct TensorStats: Sendable, Equatable {
    /// All elements, NaN included.
    public var count: Int
    /// Mean of the non-NaN elements (NaN when there are none).
    public var mean: Double
    /// Population standard deviation of the non-NaN elements.
    public var std: Double
    /// Smallest and largest non-NaN element (NaN when there are none).
    public var min: Float
    public var max: Float
    /// Elements that are not zero (NaN included).
    public var nonZero: Int
    /// NaN elements.
    public var nanCount: Int

    public init(count: Int, mean: Double, std: Double, min: Float, max: Float, nonZero: Int, nanCount: Int) {
        self.count = count
        self.mean = mean
        self.std = std
        self.min = min
        self.max = max
        self.nonZero = nonZero
        self.nanCount = nanCount
    }
}

/// Count, mean, std, min, max, nonzero and NaN counts in one pass. Unlike the single
/// reductions, NaN elements are skipped (and counted), so one NaN does not hide the
/// rest of a tensor. Sums are taken around the first element (shifted data) to keep
/// the variance accurate when the mean is large.
public func stats(_ a: Tensor) throws -> TensorStats {
    try requireComputable("stats", a.dtype)
    let shift = a.count > 0 ? a.loadScalar(at: 0) : 0
    let result = try reduce("stats", a, StatsReducer(center: shift))
    let valid = a.count - result.nanCount
    guard valid > 0 else {
        return TensorStats(count: a.count, mean: .nan, std: .nan, min: .nan, max: .nan,
                           nonZero: result.nonZero, nanCount: result.nanCount)
    }
    let n = Double(valid)
    let center = Double(result.moments.center)
    let mean = center + result.moments.sum / n
    let squares = result.moments.squares - result.moments.sum * result.moments.sum / n
    let std = mean.isFinite ? (Swift.max(0, squares) / n).squareRoot() : .nan
    return TensorStats(count: a.count, mean: mean, std: std, min: result.extrema.minimum, max: result.extrema.maximum,
                       nonZero: result.nonZero, nanCount: result.nanCount)
}

/// Moments, extrema, nonzero and NaN counts together.
struct StatsReducer: Reducer {
    var moments: CenteredReducer
    var extrema = ExtremaReducer(finiteOnly: false)
    var nonZeroBlock = SIMD16<Int32>(), nanBlock = SIMD16<Int32>()
    var nonZero = 0, nanCount = 0

    init(center: Float) { moments = CenteredReducer(center: center, skipNaN: true) }

    @inline(__always) mutating func add(_ x: SIMD16<Float>) {
        moments.add(x)
        extrema.add(x)
        nonZeroBlock &+= ones(x .!= 0)
        nanBlock &+= ones(x .!= x)
    }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        moments.add(x, live: live)
        extrema.add(x, live: live)
        nonZeroBlock &+= ones((x .!= 0) .& live)
        nanBlock &+= ones((x .!= x) .& live)
    }
    @inline(__always) mutating func endBlock() -> Bool {
        // Counts and extrema are exact; only the moments may need the f64 redo.
        nonZero += laneSum(nonZeroBlock)
        nanCount += laneSum(nanBlock)
        nonZeroBlock = SIMD16<Int32>()
        nanBlock = SIMD16<Int32>()
        return moments.endBlock()
    }
    mutating func addPrecise(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        moments.addPrecise(x, live: live)
    }
    mutating func merge(_ next: Self) {
        moments.merge(next.moments)
        extrema.merge(next.extrema)
        nonZero += next.nonZero
        nanCount += next.nanCount
    }
}

/// Checks the dtype, then returns `value()`; for early exits that must still refuse bad input.
@inline(__always)
func requireComputableThen<T>(_ operation: String, _ a: Tensor, _ value: () -> T) throws -> T {
    try requireComputable(operation, a.dtype)
    return value()
}
