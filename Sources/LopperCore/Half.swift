// Scalar conversions between Float and the 16-bit float formats. These are the
// reference the SIMD conversion kernels are tested against.

/// BF16 bits to Float: the upper half of an f32.
@inline(__always)
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float to BF16 bits, rounding to nearest even; NaN stays a (quiet) NaN, Inf stays Inf.
@inline(__always)
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

/// F16 (IEEE binary16) bits to Float.
@inline(__always)
public func f16ToFloat(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// Float to F16 bits, rounding to nearest even; NaN stays NaN, overflow gives Inf.
@inline(__always)
public func floatToF16(_ value: Float) -> UInt16 {
    Float16(value).bitPattern
}
