// Comparisons: BOOL masks (one byte per element, 0 or 1). Operands are widened to f32;
// NaN compares false (so `notEqual` is the one comparison that is true for NaN).

protocol CompareKernel {
    func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>>
}

struct GreaterKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .> y }
}
struct GreaterEqualKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .>= y }
}
struct LessKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .< y }
}
struct LessEqualKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .<= y }
}
struct EqualKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .== y }
}
/// True where x != y, NaN included (the IEEE negation of ==).
struct NotEqualKernel: CompareKernel {
    @inline(__always) func test(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMDMask<SIMD16<Int32>> { x .!= y }
}

/// Stores 16 mask lanes as bytes 0/1 at `target + index`; `live` < 16 stores a tail.
@inline(__always)
func storeMaskBytes(_ mask: SIMDMask<SIMD16<Int32>>, _ target: UnsafeMutableRawPointer, _ index: Int, live: Int = 16) {
    let bytes = SIMD16<UInt8>(truncatingIfNeeded: ones(mask))
    if live == 16 {
        target.storeBytes(of: bytes, toByteOffset: index, as: SIMD16<UInt8>.self)
    } else {
        for lane in 0..<live { target.storeBytes(of: bytes[lane], toByteOffset: index + lane, as: UInt8.self) }
    }
}

/// BOOL mask of `kernel(a[i], b[i])`, or of `kernel(a[i], scalar)` when `b` is nil.
@inline(__always)
func mapCompare<Kernel: CompareKernel>(_ operation: String, _ a: Tensor, _ b: Tensor?, scalar: Float, _ kernel: Kernel) throws -> Tensor {
    // Masks compare as 0/1 numbers.
    if a.dtype == .bool { return try mapCompare(operation, try a.converted(to: .f32), b, scalar: scalar, kernel) }
    if let b, b.dtype == .bool { return try mapCompare(operation, a, try b.converted(to: .f32), scalar: scalar, kernel) }
    try requireComputable(operation, a.dtype)
    if let b {
        try requireComputable(operation, b.dtype)
        try requireSameShape(operation, a, b)
    }
    let result = try Tensor(uninitialized: a.shape, dtype: .bool)
    let target = result.data
    let x = UnsafeRawPointer(a.data), typeA = a.dtype, sizeA = typeA.byteSize
    let y = b.map { UnsafeRawPointer($0.data) }, typeB = b?.dtype ?? .f32, sizeB = typeB.byteSize
    let broadcast = SIMD16<Float>(repeating: scalar)
    forEachBlock(count: a.count, buffers: 2) { start, length, scratch in
        let u = widened(x, typeA, sizeA, start, length, into: scratch)
        let v = y.map { widened($0, typeB, sizeB, start, length, into: scratch + kernelBlock) }
        let out = target + start
        var index = 0
        while index &+ 16 <= length {
            let right = v.map { F32Lanes.load($0, index) } ?? broadcast
            storeMaskBytes(kernel.test(F32Lanes.load(u, index), right), out, index)
            index &+= 16
        }
        let live = length &- index
        if live > 0 {
            let right = v.map { F32Lanes.loadPartial($0, index, live: live) } ?? broadcast
            storeMaskBytes(kernel.test(F32Lanes.loadPartial(u, index, live: live), right), out, index, live: live)
        }
    }
    return result
}

/// a > b elementwise, as a BOOL mask.
public func greater(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("greater", a, b, scalar: 0, GreaterKernel()) }
/// a > b for every element, as a BOOL mask.
public func greater(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("greater", a, nil, scalar: b, GreaterKernel()) }
/// a >= b elementwise.
public func greaterEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("greaterEqual", a, b, scalar: 0, GreaterEqualKernel()) }
/// a >= b for every element.
public func greaterEqual(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("greaterEqual", a, nil, scalar: b, GreaterEqualKernel()) }
/// a < b elementwise.
public func less(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("less", a, b, scalar: 0, LessKernel()) }
/// a < b for every element.
public func less(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("less", a, nil, scalar: b, LessKernel()) }
/// a <= b elementwise.
public func lessEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("lessEqual", a, b, scalar: 0, LessEqualKernel()) }
/// a <= b for every element.
public func lessEqual(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("lessEqual", a, nil, scalar: b, LessEqualKernel()) }
/// a == b elementwise (compared in f32).
public func equal(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("equal", a, b, scalar: 0, EqualKernel()) }
/// a == b for every element.
public func equal(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("equal", a, nil, scalar: b, EqualKernel()) }
/// a != b elementwise (true where either is NaN).
public func notEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try mapCompare("notEqual", a, b, scalar: 0, NotEqualKernel()) }
/// a != b for every element (true where a is NaN).
public func notEqual(_ a: Tensor, _ b: Float) throws -> Tensor { try mapCompare("notEqual", a, nil, scalar: b, NotEqualKernel()) }
