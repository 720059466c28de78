// SIMD lane formats: how 16 elements of each compute dtype are widened to f32 and
// narrowed back. Everything is integer bit manipulation on SIMD16 vectors, because the
// portable x86-64 target (SSE2) has no F16C and no BF16 instructions.
//
// Two codegen traps shape this file: `addProduct` lowers to a libm `fmaf` call per lane
// without an FMA target, and unsigned SIMD comparisons are scalarised; so comparisons
// here are on `Int32` lanes (all operands fit in 31 bits) and products are `a + x * y`.

/// Sixteen elements of one dtype in memory, widened to / narrowed from `SIMD16<Float>`.
protocol FloatLanes {
    /// Bytes per element.
    static var size: Int { get }
    /// Elements `index ..< index + 16` at `base`, widened to f32.
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    /// Narrows `value` (nearest even, NaN kept) into elements `index ..< index + 16`.
    static func store(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int)
}

extension FloatLanes {
    /// The first `live` elements at `index`, the other lanes zero. Goes through the same
    /// SIMD code as full vectors, so tails round exactly like the body.
    @inline(__always)
    static func loadPartial(_ base: UnsafeRawPointer, _ index: Int, live: Int) -> SIMD16<Float> {
        var buffer = SIMD16<Double>()   // 128 bytes: room for 16 elements of any dtype
        return withUnsafeMutableBytes(of: &buffer) { raw in
            raw.baseAddress!.copyMemory(from: base + index &* size, byteCount: live &* size)
            return load(UnsafeRawPointer(raw.baseAddress!), 0)
        }
    }

    /// Stores the first `live` lanes of `value` at `index`.
    @inline(__always)
    static func storePartial(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int, live: Int) {
        var buffer = SIMD16<Double>()
        withUnsafeMutableBytes(of: &buffer) { raw in
            store(value, raw.baseAddress!, 0)
            (base + index &* size).copyMemory(from: raw.baseAddress!, byteCount: live &* size)
        }
    }
}

enum F32Lanes: FloatLanes {
    @inline(__always) static var size: Int { 4 }
    @inline(__always)
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
    @inline(__always)
    static func store(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: value, toByteOffset: index &* 4, as: SIMD16<Float>.self)
    }
}

enum BF16Lanes: FloatLanes {
    @inline(__always) static var size: Int { 2 }
    @inline(__always)
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        widenBF16(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD16<UInt16>.self))
    }
    @inline(__always)
    static func store(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: narrowBF16(value), toByteOffset: index &* 2, as: SIMD16<UInt16>.self)
    }
}

enum F16Lanes: FloatLanes {
    @inline(__always) static var size: Int { 2 }
    @inline(__always)
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        widenF16(base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD16<UInt16>.self))
    }
    @inline(__always)
    static func store(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: narrowF16(value), toByteOffset: index &* 2, as: SIMD16<UInt16>.self)
    }
}

enum F64Lanes: FloatLanes {
    @inline(__always) static var size: Int { 8 }
    @inline(__always)
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let low = base.loadUnaligned(fromByteOffset: index &* 8, as: SIMD8<Double>.self)
        let high = base.loadUnaligned(fromByteOffset: index &* 8 &+ 64, as: SIMD8<Double>.self)
        return SIMD16(lowHalf: SIMD8<Float>(low), highHalf: SIMD8<Float>(high))
    }
    @inline(__always)
    static func store(_ value: SIMD16<Float>, _ base: UnsafeMutableRawPointer, _ index: Int) {
        base.storeBytes(of: SIMD8<Double>(value.lowHalf), toByteOffset: index &* 8, as: SIMD8<Double>.self)
        base.storeBytes(of: SIMD8<Double>(value.highHalf), toByteOffset: index &* 8 &+ 64, as: SIMD8<Double>.self)
    }
}

// MARK: - 16-bit formats

@inline(__always)
func floatBits(_ value: SIMD16<Float>) -> SIMD16<UInt32> { unsafeBitCast(value, to: SIMD16<UInt32>.self) }
@inline(__always)
func floatFromBits(_ bits: SIMD16<UInt32>) -> SIMD16<Float> { unsafeBitCast(bits, to: SIMD16<Float>.self) }
@inline(__always)
func signed(_ bits: SIMD16<UInt32>) -> SIMD16<Int32> { unsafeBitCast(bits, to: SIMD16<Int32>.self) }

/// BF16 is the upper half of an f32: widening is a 16-bit shift.
@inline(__always)
func widenBF16(_ half: SIMD16<UInt16>) -> SIMD16<Float> {
    floatFromBits(SIMD16<UInt32>(truncatingIfNeeded: half) &<< 16)
}

/// f32 to BF16, round to nearest even. NaN lanes keep sign and top payload with the quiet
/// bit set (the rounding add could otherwise carry a NaN into Inf); Inf stays Inf.
@inline(__always)
func narrowBF16(_ value: SIMD16<Float>) -> SIMD16<UInt16> {
    let bits = floatBits(value)
    let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
    // NaN lanes as an all-ones mask, in plain integer ops: SIMDMask selects scalarise
    // on the default SSE2 target. |bits| > 0x7F800000 exactly when 0x7F800000 - |bits|
    // wraps around, setting the top bit.
    let magnitude = bits & 0x7FFF_FFFF
    let nan = 0 &- ((0x7F80_0000 &- magnitude) &>> 31)
    let quiet = (bits &>> 16) | 0x0040
    let halves = (rounded & ~nan) | (quiet & nan)
    // Pack pairs into 32-bit words with shifts and ors: SSE2 has no unsigned 32->16
    // pack, and the plain truncating conversion scalarises there.
    let packed = (halves.evenHalf & 0xFFFF) | (halves.oddHalf &<< 16)
    return unsafeBitCast(packed, to: SIMD16<UInt16>.self)
}

/// IEEE binary16 to f32: rebias normals, scale subnormals through a float subtraction,
/// map Inf/NaN (payload kept) to the f32 Inf/NaN exponent.
@inline(__always)
func widenF16(_ half: SIMD16<UInt16>) -> SIMD16<Float> {
    let word = SIMD16<UInt32>(truncatingIfNeeded: half)
    let sign = (word & 0x8000) &<< 16
    let magnitude = word & 0x7FFF
    let shifted = magnitude &<< 13
    var bits = shifted &+ 0x3800_0000                       // exponent + (127 - 15)
    let isInfNaN = signed(magnitude) .>= 0x7C00
    bits.replace(with: shifted &+ 0x7000_0000, where: isInfNaN)   // exponent 31 -> 255
    // Subnormal m * 2^-24: place m as the mantissa of 2^-14, subtract 2^-14 (exact).
    let isSubnormal = signed(magnitude) .< 0x0400
    let subnormal = floatFromBits(shifted &+ 0x3880_0000) - 0x1p-14
    bits.replace(with: floatBits(subnormal), where: isSubnormal)
    return floatFromBits(bits | sign)
}

/// f32 to IEEE binary16, round to nearest even (after F. Giesen's float_to_half_fast3_rtne).
/// Overflow (|x| >= 65520) gives Inf; NaN keeps sign and top payload, quiet bit set.
@inline(__always)
func narrowF16(_ value: SIMD16<Float>) -> SIMD16<UInt16> {
    let bits = floatBits(value)
    let sign = bits & 0x8000_0000
    let magnitude = bits ^ sign
    let magnitudeSigned = signed(magnitude)
    // Normal range: rebias the exponent (-112 << 23), add the rounding bias, keep 16 bits.
    let odd = (magnitude &>> 13) & 1
    var half = (magnitude &+ 0xC800_0FFF &+ odd) &>> 13
    // Below 2^-14: adding 0.5 lets the FPU round the mantissa at the subnormal ulp 2^-24.
    let isSubnormal = magnitudeSigned .< 0x3880_0000
    let subnormal = floatBits(floatFromBits(magnitude) + 0.5) &- 0x3F00_0000
    half.replace(with: subnormal, where: isSubnormal)
    half.replace(with: 0x7C00, where: magnitudeSigned .>= 0x4780_0000)
    let quietNaN = 0x7E00 | ((magnitude &>> 13) & 0x01FF)
    half.replace(with: quietNaN, where: magnitudeSigned .> 0x7F80_0000)
    return SIMD16<UInt16>(truncatingIfNeeded: half | (sign &>> 16))
}

// MARK: - Lane helpers

/// Lanes `0 ..< live` set; for the tail of a loop.
@inline(__always)
func liveLanes(_ live: Int) -> SIMDMask<SIMD16<Int32>> {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< Int32(truncatingIfNeeded: live)
}

/// Sum of 16 lanes as a balanced tree of halves (order fixed, unlike a running sum).
@inline(__always)
func laneSum(_ value: SIMD16<Float>) -> Float {
    let eight = value.lowHalf + value.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two.x + two.y
}

/// Sum of 16 f32 lanes in f64.
@inline(__always)
func laneSumDouble(_ value: SIMD16<Float>) -> Double {
    let eight = SIMD8<Double>(value.lowHalf) + SIMD8<Double>(value.highHalf)
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two.x + two.y
}

/// Sum of 16 Int32 lanes.
@inline(__always)
func laneSum(_ value: SIMD16<Int32>) -> Int {
    let eight = value.lowHalf &+ value.highHalf
    let four = eight.lowHalf &+ eight.highHalf
    let two = four.lowHalf &+ four.highHalf
    return Int(two.x) + Int(two.y)
}

/// 1 where the mask is set, else 0.
@inline(__always)
func ones(_ mask: SIMDMask<SIMD16<Int32>>) -> SIMD16<Int32> {
    SIMD16<Int32>(repeating: 0).replacing(with: 1, where: mask)
}
