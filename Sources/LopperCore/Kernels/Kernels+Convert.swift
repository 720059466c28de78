// Conversion building blocks: widen any computable dtype to f32 and narrow f32 back,
// sixteen lanes at a time. Used by the kernels, the fused passes and the I/O layer.

/// Widens `count` elements of `dtype` at `source` into f32 at `target`.
///
/// F32, F16, BF16 and F64 run in SIMD; BOOL and the integer dtypes are converted one
/// element at a time; dtypes without a Float meaning (F8, C64) read as NaN.
public func loadFloats(_ source: UnsafeRawPointer, dtype: DType, into target: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    let out = UnsafeMutableRawPointer(target)
    switch dtype {
    case .f32: out.copyMemory(from: source, byteCount: count * 4)
    case .bf16: convertLanes(BF16Lanes.self, F32Lanes.self, source, out, count)
    case .f16: convertLanes(F16Lanes.self, F32Lanes.self, source, out, count)
    case .f64: convertLanes(F64Lanes.self, F32Lanes.self, source, out, count)
    case .bool, .u8:
        let bytes = source.assumingMemoryBound(to: UInt8.self)
        for index in 0..<count { target[index] = Float(bytes[index]) }
    default:
        let view = UnsafeMutableRawPointer(mutating: source)
        for index in 0..<count { target[index] = scalarLoad(view, dtype, index) }
    }
}

/// Narrows `count` f32 values into `dtype` at `target`: F16/BF16 round to nearest even,
/// keep NaN (quiet) and Inf, and overflow to Inf; F64 widens exactly; BOOL stores
/// `value != 0`; integer dtypes round and clamp. F8 and C64 are not writable
/// (callers check `dtype.isComputable` or `.bool` first).
public func storeFloats(_ source: UnsafePointer<Float>, into target: UnsafeMutableRawPointer, dtype: DType, count: Int) {
    guard count > 0 else { return }
    let input = UnsafeRawPointer(source)
    switch dtype {
    case .f32: target.copyMemory(from: input, byteCount: count * 4)
    case .bf16: convertLanes(F32Lanes.self, BF16Lanes.self, input, target, count)
    case .f16: convertLanes(F32Lanes.self, F16Lanes.self, input, target, count)
    case .f64: convertLanes(F32Lanes.self, F64Lanes.self, input, target, count)
    case .bool:
        let bytes = target.assumingMemoryBound(to: UInt8.self)
        for index in 0..<count { bytes[index] = source[index] != 0 ? 1 : 0 }
    default:
        for index in 0..<count { scalarStore(source[index], target, dtype, index) }
    }
}

/// One element widened by `Tensor.loadScalar`'s rules (integers exact up to 2^24).
private func scalarLoad(_ base: UnsafeMutableRawPointer, _ dtype: DType, _ index: Int) -> Float {
    switch dtype {
    case .i8: return Float(base.load(fromByteOffset: index, as: Int8.self))
    case .i16: return Float(base.load(fromByteOffset: index * 2, as: Int16.self))
    case .u16: return Float(base.load(fromByteOffset: index * 2, as: UInt16.self))
    case .i32: return Float(base.load(fromByteOffset: index * 4, as: Int32.self))
    case .u32: return Float(base.load(fromByteOffset: index * 4, as: UInt32.self))
    case .i64: return Float(base.load(fromByteOffset: index * 8, as: Int64.self))
    case .u64: return Float(base.load(fromByteOffset: index * 8, as: UInt64.self))
    case .bool, .u8: return Float(base.load(fromByteOffset: index, as: UInt8.self))
    case .f32: return base.load(fromByteOffset: index * 4, as: Float.self)
    case .f64: return Float(base.load(fromByteOffset: index * 8, as: Double.self))
    case .bf16: return bf16ToFloat(base.load(fromByteOffset: index * 2, as: UInt16.self))
    case .f16: return f16ToFloat(base.load(fromByteOffset: index * 2, as: UInt16.self))
    case .f8e5m2, .f8e4m3, .f8e8m0, .c64: return .nan
    }
}

/// One element narrowed by `Tensor.storeScalar`'s rules (integers round and clamp; NaN is 0).
private func scalarStore(_ value: Float, _ base: UnsafeMutableRawPointer, _ dtype: DType, _ index: Int) {
    let whole = value.isNaN ? 0 : Double(value.rounded())
    switch dtype {
    case .u8: base.storeBytes(of: UInt8(clampingDouble: whole), toByteOffset: index, as: UInt8.self)
    case .i8: base.storeBytes(of: Int8(clampingDouble: whole), toByteOffset: index, as: Int8.self)
    case .i16: base.storeBytes(of: Int16(clampingDouble: whole), toByteOffset: index * 2, as: Int16.self)
    case .u16: base.storeBytes(of: UInt16(clampingDouble: whole), toByteOffset: index * 2, as: UInt16.self)
    case .i32: base.storeBytes(of: Int32(clampingDouble: whole), toByteOffset: index * 4, as: Int32.self)
    case .u32: base.storeBytes(of: UInt32(clampingDouble: whole), toByteOffset: index * 4, as: UInt32.self)
    case .i64: base.storeBytes(of: Int64(clampingDouble: whole), toByteOffset: index * 8, as: Int64.self)
    case .u64: base.storeBytes(of: UInt64(clampingDouble: whole), toByteOffset: index * 8, as: UInt64.self)
    case .bool: base.storeBytes(of: value != 0 ? 1 : 0, toByteOffset: index, as: UInt8.self)
    case .f32, .f64, .f16, .bf16, .f8e5m2, .f8e4m3, .f8e8m0, .c64:
        preconditionFailure("storeFloats: \(dtype) is not an integer dtype")
    }
}

extension FixedWidthInteger {
    /// `value` clamped to this type's range (value is whole, not NaN).
    fileprivate init(clampingDouble value: Double) {
        if value <= Double(Self.min) { self = Self.min } else if value >= Double(Self.max) { self = Self.max } else { self = Self(value) }
    }
}

/// Converts `count` elements from lane format `Source` to `Target` in parallel chunks.
@inline(__always)
func convertLanes<Source: FloatLanes, Target: FloatLanes>(_: Source.Type, _: Target.Type,
                                                        _ source: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _ count: Int) {
    Parallel.forEachChunk(count: count) { range in
        var index = range.lowerBound
        while index &+ 16 <= range.upperBound {
            Target.store(Source.load(source, index), target, index)
            index &+= 16
        }
        let live = range.upperBound &- index
        if live > 0 {
            Target.storePartial(Source.loadPartial(source, index, live: live), target, index, live: live)
        }
    }
}

extension Tensor {
    /// A copy in `dtype` (F32, F16, BF16, F64 or BOOL). Floats round to nearest even with
    /// NaN and Inf kept; BOOL keeps `value != 0`. Sources may be any dtype with a Float
    /// meaning (floats, integers, BOOL).
    public func converted(to target: DType) throws -> Tensor {
        guard target.isComputable || target == .bool else { throw TensorError.unsupportedDType("convert", target) }
        switch dtype {
        case .f8e5m2, .f8e4m3, .f8e8m0, .c64: throw TensorError.unsupportedDType("convert", dtype)
        default: break
        }
        let result = try Tensor(uninitialized: shape, dtype: target)
        if target == dtype {
            result.data.copyMemory(from: data, byteCount: byteCount)
            return result
        }
        let source = UnsafeRawPointer(data), output = result.data
        switch (dtype, target) {
        case (.f32, _): storeFloats(source.assumingMemoryBound(to: Float.self), into: output, dtype: target, count: count)
        case (_, .f32): loadFloats(source, dtype: dtype, into: output.assumingMemoryBound(to: Float.self), count: count)
        case (.bf16, .f16): convertLanes(BF16Lanes.self, F16Lanes.self, source, output, count)
        case (.f16, .bf16): convertLanes(F16Lanes.self, BF16Lanes.self, source, output, count)
        case (.bf16, .f64): convertLanes(BF16Lanes.self, F64Lanes.self, source, output, count)
        case (.f16, .f64): convertLanes(F16Lanes.self, F64Lanes.self, source, output, count)
        case (.f64, .bf16): convertLanes(F64Lanes.self, BF16Lanes.self, source, output, count)
        case (.f64, .f16): convertLanes(F64Lanes.self, F16Lanes.self, source, output, count)
        default:
            // Integers and BOOL, in blocks through an f32 buffer.
            let sourceSize = dtype.byteSize, targetSize = target.byteSize
            Parallel.forEachChunk(count: count) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: kernelBlock) { buffer in
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let length = Swift.min(kernelBlock, range.upperBound - start)
                        loadFloats(source + start * sourceSize, dtype: dtype, into: buffer.baseAddress!, count: length)
                        storeFloats(buffer.baseAddress!, into: output + start * targetSize, dtype: target, count: length)
                        start += length
                    }
                }
            }
        }
        return result
    }
}
