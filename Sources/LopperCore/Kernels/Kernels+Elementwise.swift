// Elementwise arithmetic. Operands of any computable dtype (mixed), computed in f32,
// written as `dtype` (default F32) with round-to-nearest-even.

struct AddKernel: BinaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x + y }
}
struct SubKernel: BinaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x - y }
}
struct MulKernel: BinaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x * y }
}
struct DivKernel: BinaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x / y }
}
/// alpha * x + y, rounded twice (no fused multiply-add: it is a libm call per lane on
/// baseline x86-64, and the result must be the same on every machine).
struct AxpyKernel: BinaryKernel {
    let alpha: Float
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { alpha * x + y }
}

/// |x - y|, the same f32 operations as a subtraction followed by `AbsKernel`.
struct AbsDifferenceKernel: BinaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { floatFromBits(floatBits(x - y) & 0x7FFF_FFFF) }
}

struct AddScalarKernel: UnaryKernel {
    let value: Float
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x + value }
}
struct SubScalarKernel: UnaryKernel {
    let value: Float
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x - value }
}
struct MulScalarKernel: UnaryKernel {
    let value: Float
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x * value }
}
struct DivScalarKernel: UnaryKernel {
    let value: Float
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x / value }
}
struct NegKernel: UnaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { floatFromBits(floatBits(x) ^ 0x8000_0000) }
}
struct AbsKernel: UnaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { floatFromBits(floatBits(x) & 0x7FFF_FFFF) }
}
/// -1, 0 or +1; NaN stays NaN.
struct SignKernel: UnaryKernel {
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let zero = SIMD16<Float>(repeating: 0)
        let sign = zero.replacing(with: 1, where: x .> 0).replacing(with: -1, where: x .< 0)
        return sign.replacing(with: x, where: x .!= x)
    }
}

// MARK: - Tensor with tensor

/// a + b elementwise.
public func add(_ a: Tensor, _ b: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("add", a, b, dtype: dtype, AddKernel())
}

/// a - b elementwise.
public func sub(_ a: Tensor, _ b: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("sub", a, b, dtype: dtype, SubKernel())
}

/// a * b elementwise. A BOOL operand is a mask: `mask ? x : +0` (so a dropped entry
/// is +0 whatever its sign, as in the fused DARE kernels).
public func mul(_ a: Tensor, _ b: Tensor, dtype: DType = .f32) throws -> Tensor {
    if b.dtype == .bool, a.dtype != .bool { return try select(b, a, 0, dtype: dtype) }
    if a.dtype == .bool, b.dtype != .bool { return try select(a, b, 0, dtype: dtype) }
    return try mapBinary("mul", a, b, dtype: dtype, MulKernel())
}

/// a / b elementwise (IEEE: x / 0 is ±Inf, 0 / 0 is NaN).
public func div(_ a: Tensor, _ b: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("div", a, b, dtype: dtype, DivKernel())
}

/// alpha * x + y elementwise.
public func axpy(_ alpha: Float, _ x: Tensor, _ y: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("axpy", x, y, dtype: dtype, AxpyKernel(alpha: alpha))
}

/// The delta `finetuned - base` in one pass (widen, subtract, round to `dtype`).
public func delta(_ finetuned: Tensor, _ base: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("delta", finetuned, base, dtype: dtype, SubKernel())
}

/// |finetuned - base| in f32 (the magnitude of the delta), written as `dtype`.
public func absDelta(_ finetuned: Tensor, _ base: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapBinary("absDelta", finetuned, base, dtype: dtype, AbsDifferenceKernel())
}

// MARK: - Tensor with scalar

/// a + b for every element.
public func add(_ a: Tensor, _ b: Float, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("add", a, dtype: dtype, AddScalarKernel(value: b))
}

/// a - b for every element.
public func sub(_ a: Tensor, _ b: Float, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("sub", a, dtype: dtype, SubScalarKernel(value: b))
}

/// a * b for every element (the same as `scale`).
public func mul(_ a: Tensor, _ b: Float, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("mul", a, dtype: dtype, MulScalarKernel(value: b))
}

/// a / b for every element (a true division, not a multiply by 1/b).
public func div(_ a: Tensor, _ b: Float, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("div", a, dtype: dtype, DivScalarKernel(value: b))
}

/// s * a for every element.
public func scale(_ a: Tensor, _ s: Float, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("scale", a, dtype: dtype, MulScalarKernel(value: s))
}

// MARK: - Unary

/// -a (flips the sign bit; NaN stays NaN).
public func neg(_ a: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("neg", a, dtype: dtype, NegKernel())
}

/// |a| (clears the sign bit).
public func abs(_ a: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("abs", a, dtype: dtype, AbsKernel())
}

/// -1, 0 or +1 per element; NaN gives NaN.
public func sign(_ a: Tensor, dtype: DType = .f32) throws -> Tensor {
    try mapUnary("sign", a, dtype: dtype, SignKernel())
}
