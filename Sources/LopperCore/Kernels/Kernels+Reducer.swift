// The reduction engine. Each chunk of `Parallel.chunkSize` elements is reduced by one
// thread into its own partial; partials are merged in chunk order, so results do not
// depend on the thread count. Within a chunk, blocks of `reduceBlock` elements are summed
// in f32 SIMD lanes (each lane adds at most 64 values) and every block total is added
// in f64. A block whose f32 lanes overflow (huge values, Inf or NaN) is summed again
// in f64, so f32 range limits never change the result.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elements per f32 accumulation block.
let reduceBlock = 1024

protocol Reducer {
    /// Adds sixteen values.
    mutating func add(_ x: SIMD16<Float>)
    /// Adds the `live` lanes of a tail vector (other lanes hold zeros to be ignored).
    mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>)
    /// Ends a block: moves the f32 block accumulators into the f64 totals and returns
    /// true, or drops them and returns false when they are not finite.
    mutating func endBlock() -> Bool
    /// Adds values straight into the f64 totals (the redo of a dropped block).
    mutating func addPrecise(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>)
    /// Folds in the partial of the next chunk.
    mutating func merge(_ next: Self)
}

extension Reducer {
    mutating func endBlock() -> Bool { true }
    mutating func addPrecise(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) { add(x, live: live) }
}

/// Reduces elements `range` of `base` (lane format `Lanes`) into `reducer`.
@inline(__always)
func reduceRange<Lanes: FloatLanes, R: Reducer>(_: Lanes.Type, _ base: UnsafeRawPointer, _ range: Range<Int>, into reducer: inout R) {
    var start = range.lowerBound
    let end = range.upperBound
    while start < end {
        let blockEnd = Swift.min(start &+ reduceBlock, end)
        var index = start
        while index &+ 16 <= blockEnd {
            reducer.add(Lanes.load(base, index))
            index &+= 16
        }
        if index < blockEnd {
            let live = blockEnd &- index
            reducer.add(Lanes.loadPartial(base, index, live: live), live: liveLanes(live))
        }
        if !reducer.endBlock() {
            index = start
            while index < blockEnd {
                let live = Swift.min(16, blockEnd &- index)
                let values = live == 16 ? Lanes.load(base, index) : Lanes.loadPartial(base, index, live: live)
                reducer.addPrecise(values, live: liveLanes(live))
                index &+= 16
            }
        }
        start = blockEnd
    }
}

/// Reduces elements `range` of a computable-dtype buffer into `reducer`.
@inline(__always)
func reduceRange<R: Reducer>(_ base: UnsafeRawPointer, _ dtype: DType, _ range: Range<Int>, into reducer: inout R) {
    switch dtype {
    case .f32: reduceRange(F32Lanes.self, base, range, into: &reducer)
    case .bf16: reduceRange(BF16Lanes.self, base, range, into: &reducer)
    case .f16: reduceRange(F16Lanes.self, base, range, into: &reducer)
    default: reduceRange(F64Lanes.self, base, range, into: &reducer)
    }
}

/// Reduces the whole tensor: `initial` (the identity, with any parameters) per chunk,
/// chunk partials merged in order.
@inline(__always)
func reduce<R: Reducer>(_ operation: String, _ tensor: Tensor, _ initial: R) throws -> R {
    try requireComputable(operation, tensor.dtype)
    let count = tensor.count, chunk = Parallel.chunkSize
    let chunks = (count + chunk - 1) / chunk
    if chunks <= 1 {
        var reducer = initial
        reduceRange(UnsafeRawPointer(tensor.data), tensor.dtype, 0..<count, into: &reducer)
        return reducer
    }
    let partials = UnsafeMutableBufferPointer<R>.allocate(capacity: chunks)
    partials.initialize(repeating: initial)
    defer { partials.deinitialize(); partials.deallocate() }
    let base = UnsafeRawPointer(tensor.data), dtype = tensor.dtype
    Parallel.forEachChunk(count: count, chunk: chunk) { range in
        var reducer = initial
        reduceRange(base, dtype, range, into: &reducer)
        partials[range.lowerBound / chunk] = reducer
    }
    var total = initial
    for partial in partials { total.merge(partial) }
    return total
}

// MARK: - Lane transforms

/// A per-element map applied before summing, in f32 (fast) and f64 (precise) form.
protocol LaneTransform {
    static func apply(_ x: SIMD16<Float>) -> SIMD16<Float>
    static func precise(_ x: SIMD8<Double>) -> SIMD8<Double>
}

enum Identity: LaneTransform {
    @inline(__always) static func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x }
    @inline(__always) static func precise(_ x: SIMD8<Double>) -> SIMD8<Double> { x }
}
enum Magnitude: LaneTransform {
    @inline(__always) static func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { floatFromBits(floatBits(x) & 0x7FFF_FFFF) }
    @inline(__always) static func precise(_ x: SIMD8<Double>) -> SIMD8<Double> {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt64>.self) & 0x7FFF_FFFF_FFFF_FFFF, to: SIMD8<Double>.self)
    }
}
enum Square: LaneTransform {
    @inline(__always) static func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x * x }
    @inline(__always) static func precise(_ x: SIMD8<Double>) -> SIMD8<Double> { x * x }
}

/// f64 sum of sixteen values mapped by `T` in f64.
@inline(__always)
func preciseSum<T: LaneTransform>(_: T.Type, _ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) -> Double {
    let masked = SIMD16<Float>(repeating: 0).replacing(with: x, where: live)
    let both = T.precise(SIMD8<Double>(masked.lowHalf)) + T.precise(SIMD8<Double>(masked.highHalf))
    let four = both.lowHalf + both.highHalf
    let two = four.lowHalf + four.highHalf
    return two.x + two.y
}

// MARK: - Reducers

/// Sum of T(x).
struct SumReducer<T: LaneTransform>: Reducer {
    var block = SIMD16<Float>()
    var total = 0.0

    @inline(__always) mutating func add(_ x: SIMD16<Float>) { block += T.apply(x) }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        block += SIMD16<Float>(repeating: 0).replacing(with: T.apply(x), where: live)
    }
    @inline(__always) mutating func endBlock() -> Bool {
        let partial = laneSumDouble(block)
        block = SIMD16<Float>()
        guard partial.isFinite else { return false }
        total += partial
        return true
    }
    @inline(__always) mutating func addPrecise(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        total += preciseSum(T.self, x, live: live)
    }
    mutating func merge(_ next: Self) { total += next.total }
}

/// Sum and sum of squares of x - center (the shifted-data variance), NaN lanes skipped
/// when `skipNaN` is set (and counted in `nanCount`).
struct CenteredReducer: Reducer {
    let center: Float
    let skipNaN: Bool
    var blockSum = SIMD16<Float>(), blockSquares = SIMD16<Float>()
    var sum = 0.0, squares = 0.0

    init(center: Float, skipNaN: Bool) {
        self.center = center.isFinite ? center : 0
        self.skipNaN = skipNaN
    }

    @inline(__always) private func deviation(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>?) -> SIMD16<Float> {
        var d = x - center
        if skipNaN { d.replace(with: 0, where: x .!= x) }
        if let live { d = SIMD16<Float>(repeating: 0).replacing(with: d, where: live) }
        return d
    }
    @inline(__always) mutating func add(_ x: SIMD16<Float>) {
        let d = deviation(x, live: nil)
        blockSum += d
        blockSquares += d * d
    }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        let d = deviation(x, live: live)
        blockSum += d
        blockSquares += d * d
    }
    @inline(__always) mutating func endBlock() -> Bool {
        let partialSum = laneSumDouble(blockSum), partialSquares = laneSumDouble(blockSquares)
        blockSum = SIMD16<Float>()
        blockSquares = SIMD16<Float>()
        guard partialSum.isFinite, partialSquares.isFinite else { return false }
        sum += partialSum
        squares += partialSquares
        return true
    }
    mutating func addPrecise(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        let c = Double(center)
        for lane in 0..<16 where live[lane] && !(skipNaN && x[lane].isNaN) {
            let d = Double(x[lane]) - c
            sum += d
            squares += d * d
        }
    }
    mutating func merge(_ next: Self) {
        sum += next.sum
        squares += next.squares
    }
}

/// Minimum, maximum and whether a NaN was seen; with `finiteOnly`, ±Inf and NaN are skipped.
struct ExtremaReducer: Reducer {
    let finiteOnly: Bool
    var low = SIMD16<Float>(repeating: .infinity), high = SIMD16<Float>(repeating: -.infinity)
    var nanLanes = SIMD16<Int32>()

    init(finiteOnly: Bool) { self.finiteOnly = finiteOnly }

    @inline(__always) mutating func add(_ x: SIMD16<Float>) {
        var value = x
        if finiteOnly {
            // NaN and ±Inf fail |x| < Inf; replaced by a value that moves neither bound.
            let finite = floatFromBits(floatBits(x) & 0x7FFF_FFFF) .< .infinity
            value = low.replacing(with: x, where: finite)
            low.replace(with: value, where: value .< low)
            value = high.replacing(with: x, where: finite)
            high.replace(with: value, where: value .> high)
            return
        }
        nanLanes |= ones(x .!= x)
        low.replace(with: value, where: value .< low)     // NaN compares false: skipped here,
        high.replace(with: value, where: value .> high)   // reported through nanLanes
    }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        // Dead tail lanes must move neither bound: fold them in as a separate reducer
        // whose dead lanes hold the neutral values (+inf for low, -inf for high).
        var tail = ExtremaReducer(finiteOnly: finiteOnly)
        tail.add(tail.low.replacing(with: x, where: live))
        tail.high.replace(with: -.infinity, where: .!live)
        tail.low.replace(with: .infinity, where: .!live)
        merge(tail)
    }
    mutating func merge(_ next: Self) {
        low.replace(with: next.low, where: next.low .< low)
        high.replace(with: next.high, where: next.high .> high)
        nanLanes |= next.nanLanes
    }
    var sawNaN: Bool { nanLanes != SIMD16<Int32>() }
    var minimum: Float { low.min() }
    var maximum: Float { high.max() }
}

/// Count of values that are not zero (NaN counts as nonzero).
struct NonZeroReducer: Reducer {
    var block = SIMD16<Int32>()
    var total = 0

    @inline(__always) mutating func add(_ x: SIMD16<Float>) { block &+= ones(x .!= 0) }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) { block &+= ones((x .!= 0) .& live) }
    @inline(__always) mutating func endBlock() -> Bool {
        total += laneSum(block)
        block = SIMD16<Int32>()
        return true
    }
    mutating func merge(_ next: Self) { total += next.total }
}

/// Counts of NaN and of infinite values, from the bits (no float compares, no masks).
struct NonFiniteReducer: Reducer {
    var nanBlock = SIMD16<UInt32>(), infiniteBlock = SIMD16<UInt32>()
    var nan = 0, infinite = 0

    @inline(__always) mutating func add(_ x: SIMD16<Float>) {
        let magnitude = floatBits(x) & 0x7FFF_FFFF
        nanBlock &+= (0x7F80_0000 &- magnitude) &>> 31                  // magnitude above Inf's
        infiniteBlock &+= ((magnitude ^ 0x7F80_0000) &- 1) &>> 31       // exactly Inf's
    }
    @inline(__always) mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        add(x.replacing(with: 0, where: .!live))
    }
    @inline(__always) mutating func endBlock() -> Bool {
        nan += Int(nanBlock.wrappedSum()); infinite += Int(infiniteBlock.wrappedSum())
        nanBlock = SIMD16<UInt32>(); infiniteBlock = SIMD16<UInt32>()
        return true
    }
    mutating func merge(_ next: Self) { nan += next.nan; infinite += next.infinite }
}

/// Sum of |x|^p in f64 (any p > 0; the slow general norm).
struct PowerSumReducer: Reducer {
    let p: Double
    var total = 0.0

    init(p: Double) { self.p = p }

    mutating func add(_ x: SIMD16<Float>) { add(x, live: liveLanes(16)) }
    mutating func add(_ x: SIMD16<Float>, live: SIMDMask<SIMD16<Int32>>) {
        for lane in 0..<16 where live[lane] {
            total += Swift.abs(Double(x[lane])).power(p)
        }
    }
    mutating func merge(_ next: Self) { total += next.total }
}

extension Double {
    /// self^exponent for self >= 0 through exp/log identities of the standard library.
    func power(_ exponent: Double) -> Double {
        if self == 0 { return 0 }
        if isNaN { return .nan }
        if isInfinite { return .infinity }
        return pow(self, exponent)
    }
}
