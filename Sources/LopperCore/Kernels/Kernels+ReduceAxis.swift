// Reductions along one axis of a 2-D tensor (a 1-D tensor is one row). Results are F32;
// accumulation is in f64 and the split of the work is fixed by the shape alone, so
// results do not depend on the thread count.

/// What an axis reduction computes per row or column.
enum AxisReduction {
    case sum, absoluteSum, squareSum, maxAbsolute, power(Double)

    init(norm p: Double, operation: String) throws {
        guard p > 0 else { throw TensorError.invalid("\(operation): p must be > 0 (1, 2, inf or another positive number), got \(p)") }
        switch p {
        case 1: self = .absoluteSum
        case 2: self = .squareSum
        case .infinity: self = .maxAbsolute
        default: self = .power(p)
        }
    }

    /// The reduced value from the accumulated one (the root of a norm).
    func finish(_ value: Double) -> Float {
        switch self {
        case .sum, .absoluteSum, .maxAbsolute: return Float(value)
        case .squareSum: return Float(value.squareRoot())
        case .power(let p): return Float(value.power(1 / p))
        }
    }
}

private func matrixShape(_ operation: String, _ a: Tensor) throws -> (rows: Int, cols: Int) {
    try requireComputable(operation, a.dtype)
    guard let shape = a.matrixShape else {
        throw TensorError.invalid("\(operation): expects a 1-D or 2-D tensor, got shape \(a.shape.shapeText)")
    }
    return shape
}

// MARK: - Rows

/// Sum of each row: [r, c] -> F32 [r].
public func rowSums(_ a: Tensor) throws -> Tensor {
    try reduceRows("rowSums", a, .sum)
}

/// p-norm of each row (p = 1, 2, inf or any p > 0): [r, c] -> F32 [r].
public func rowNorms(_ a: Tensor, p: Double = 2) throws -> Tensor {
    try reduceRows("rowNorms", a, AxisReduction(norm: p, operation: "rowNorms"))
}

private func reduceRows(_ operation: String, _ a: Tensor, _ reduction: AxisReduction) throws -> Tensor {
    let (rows, cols) = try matrixShape(operation, a)
    let result = try Tensor(zeros: [rows])
    let output = result.data.assumingMemoryBound(to: Float.self)
    let base = UnsafeRawPointer(a.data), dtype = a.dtype
    let rowsPerTask = Swift.max(1, Parallel.chunkSize / Swift.max(1, cols))
    Parallel.forEachChunk(count: rows, chunk: rowsPerTask) { range in
        for row in range {
            let elements = row * cols ..< (row + 1) * cols
            output[row] = reduction.finish(reduceRow(base, dtype, elements, reduction))
        }
    }
    return result
}

/// The accumulated value of one row (before `finish`).
private func reduceRow(_ base: UnsafeRawPointer, _ dtype: DType, _ elements: Range<Int>, _ reduction: AxisReduction) -> Double {
    switch reduction {
    case .sum:
        var reducer = SumReducer<Identity>()
        reduceRange(base, dtype, elements, into: &reducer)
        return reducer.total
    case .absoluteSum:
        var reducer = SumReducer<Magnitude>()
        reduceRange(base, dtype, elements, into: &reducer)
        return reducer.total
    case .squareSum:
        var reducer = SumReducer<Square>()
        reduceRange(base, dtype, elements, into: &reducer)
        return reducer.total
    case .maxAbsolute:
        var reducer = ExtremaReducer(finiteOnly: false)
        reduceRange(base, dtype, elements, into: &reducer)
        if reducer.sawNaN { return .nan }
        if elements.isEmpty { return 0 }
        return Double(Swift.max(Swift.abs(reducer.minimum), Swift.abs(reducer.maximum)))
    case .power(let p):
        var reducer = PowerSumReducer(p: p)
        reduceRange(base, dtype, elements, into: &reducer)
        return reducer.total
    }
}

// MARK: - Columns

/// Sum of each column: [r, c] -> F32 [c].
public func colSums(_ a: Tensor) throws -> Tensor {
    try reduceColumns("colSums", a, .sum)
}

/// p-norm of each column (p = 1, 2, inf or any p > 0): [r, c] -> F32 [c].
public func colNorms(_ a: Tensor, p: Double = 2) throws -> Tensor {
    try reduceColumns("colNorms", a, AxisReduction(norm: p, operation: "colNorms"))
}

/// Columns per task (f64 accumulators for one stripe stay in L1) and rows per task.
private let stripeWidth = 512
private let rowsPerBand = 256

/// Each task accumulates one band of rows for one stripe of columns into its own slot
/// of a partial table; the table is folded band by band, in order.
private func reduceColumns(_ operation: String, _ a: Tensor, _ reduction: AxisReduction) throws -> Tensor {
    let (rows, cols) = try matrixShape(operation, a)
    let result = try Tensor(zeros: [cols])
    guard cols > 0 else { return result }
    let bands = Swift.max(1, (rows + rowsPerBand - 1) / rowsPerBand)
    let stripes = (cols + stripeWidth - 1) / stripeWidth
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: bands * cols)
    partials.initialize(repeating: 0)
    defer { partials.deallocate() }
    let base = UnsafeRawPointer(a.data), dtype = a.dtype
    let table = partials.baseAddress!
    Parallel.forEach(bands * stripes) { task in
        let band = task / stripes, stripe = task % stripes
        let rowRange = band * rowsPerBand ..< Swift.min(rows, (band + 1) * rowsPerBand)
        let colRange = stripe * stripeWidth ..< Swift.min(cols, (stripe + 1) * stripeWidth)
        let slot = table + band * cols
        switch dtype {
        case .f32: accumulateColumns(F32Lanes.self, base, cols, rowRange, colRange, reduction, into: slot)
        case .bf16: accumulateColumns(BF16Lanes.self, base, cols, rowRange, colRange, reduction, into: slot)
        case .f16: accumulateColumns(F16Lanes.self, base, cols, rowRange, colRange, reduction, into: slot)
        default: accumulateColumns(F64Lanes.self, base, cols, rowRange, colRange, reduction, into: slot)
        }
    }
    let output = result.data.assumingMemoryBound(to: Float.self)
    for column in 0..<cols {
        var value = table[column]
        for band in 1..<bands {
            let next = table[band * cols + column]
            if case .maxAbsolute = reduction {
                if next > value || next.isNaN || value.isNaN { value = value.isNaN ? value : next }
            } else {
                value += next
            }
        }
        output[column] = reduction.finish(value)
    }
    return result
}

/// Adds rows `rowRange`, columns `colRange` into `slot[column]` (f64, in row order).
@inline(__always)
private func accumulateColumns<Lanes: FloatLanes>(_: Lanes.Type, _ base: UnsafeRawPointer, _ cols: Int,
                                                   _ rowRange: Range<Int>, _ colRange: Range<Int>,
                                                   _ reduction: AxisReduction, into slot: UnsafeMutablePointer<Double>) {
    for row in rowRange {
        var column = colRange.lowerBound
        while column < colRange.upperBound {
            let live = Swift.min(16, colRange.upperBound - column)
            let index = row * cols + column
            let values = live == 16 ? Lanes.load(base, index) : Lanes.loadPartial(base, index, live: live)
            let low = SIMD8<Double>(values.lowHalf), high = SIMD8<Double>(values.highHalf)
            let target = UnsafeMutableRawPointer(slot + column)
            var accumulator = live == 16
                ? (target.loadUnaligned(as: SIMD8<Double>.self), target.loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self))
                : partialPair(slot + column, live: live)
            switch reduction {
            case .sum:
                accumulator.0 += low; accumulator.1 += high
            case .absoluteSum:
                accumulator.0 += Magnitude.precise(low); accumulator.1 += Magnitude.precise(high)
            case .squareSum:
                accumulator.0 += low * low; accumulator.1 += high * high
            case .maxAbsolute:
                accumulator.0 = maxPropagatingNaN(accumulator.0, Magnitude.precise(low))
                accumulator.1 = maxPropagatingNaN(accumulator.1, Magnitude.precise(high))
            case .power(let p):
                for lane in 0..<8 {
                    accumulator.0[lane] += Swift.abs(low[lane]).power(p)
                    accumulator.1[lane] += Swift.abs(high[lane]).power(p)
                }
            }
            if live == 16 {
                target.storeBytes(of: accumulator.0, as: SIMD8<Double>.self)
                target.storeBytes(of: accumulator.1, toByteOffset: 64, as: SIMD8<Double>.self)
            } else {
                for lane in 0..<live { slot[column + lane] = lane < 8 ? accumulator.0[lane] : accumulator.1[lane - 8] }
            }
            column += 16
        }
    }
}

/// The first `live` accumulators at `pointer` as two 8-lane vectors (zeros after).
@inline(__always)
private func partialPair(_ pointer: UnsafeMutablePointer<Double>, live: Int) -> (SIMD8<Double>, SIMD8<Double>) {
    var low = SIMD8<Double>(), high = SIMD8<Double>()
    for lane in 0..<live {
        if lane < 8 { low[lane] = pointer[lane] } else { high[lane - 8] = pointer[lane] }
    }
    return (low, high)
}

/// Lane-wise maximum where a NaN on either side wins (and stays).
@inline(__always)
private func maxPropagatingNaN(_ current: SIMD8<Double>, _ value: SIMD8<Double>) -> SIMD8<Double> {
    current.replacing(with: value, where: (value .> current) .| (value .!= value))
}
