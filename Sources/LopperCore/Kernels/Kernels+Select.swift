// select(mask, a, b): mask ? a : b per element. The mask is BOOL (any nonzero byte is
// true) or a computable tensor (nonzero is true, so NaN is true).

/// Sixteen "true" lanes of `mask` starting at element `index` of the block at `base`.
@inline(__always)
private func maskLanes(_ base: UnsafeRawPointer, isBytes: Bool, _ index: Int, live: Int) -> SIMDMask<SIMD16<Int32>> {
    if isBytes {
        var bytes = SIMD16<UInt8>()
        if live == 16 {
            bytes = base.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)
        } else {
            for lane in 0..<live { bytes[lane] = base.load(fromByteOffset: index + lane, as: UInt8.self) }
        }
        return SIMD16<Int32>(truncatingIfNeeded: bytes) .!= 0
    }
    let values = live == 16 ? F32Lanes.load(base, index) : F32Lanes.loadPartial(base, index, live: live)
    return values .!= 0
}

private func selectTensors(_ mask: Tensor, _ a: Tensor, _ b: Tensor?, scalar: Float, dtype: DType) throws -> Tensor {
    let operation = "select"
    if mask.dtype != .bool && mask.dtype != .u8 { try requireComputable(operation, mask.dtype) }
    try requireComputable(operation, a.dtype, dtype)
    try requireSameShape(operation, mask, a)
    if let b {
        try requireComputable(operation, b.dtype)
        try requireSameShape(operation, mask, b)
    }
    let result = try Tensor(uninitialized: a.shape, dtype: dtype)
    let target = result.data, outputSize = dtype.byteSize
    let m = UnsafeRawPointer(mask.data), typeM = mask.dtype, sizeM = typeM.byteSize
    let isBytes = typeM == .bool || typeM == .u8
    let x = UnsafeRawPointer(a.data), typeA = a.dtype, sizeA = typeA.byteSize
    let y = b.map { UnsafeRawPointer($0.data) }, typeB = b?.dtype ?? .f32, sizeB = typeB.byteSize
    let broadcast = SIMD16<Float>(repeating: scalar)
    forEachBlock(count: a.count, buffers: 4) { start, length, scratch in
        let conditions = isBytes ? m + start : widened(m, typeM, sizeM, start, length, into: scratch)
        let u = widened(x, typeA, sizeA, start, length, into: scratch + kernelBlock)
        let v = y.map { widened($0, typeB, sizeB, start, length, into: scratch + 2 * kernelBlock) }
        let outputBlock = scratch + 3 * kernelBlock
        let w = dtype == .f32 ? target + start * 4 : UnsafeMutableRawPointer(outputBlock)
        var index = 0
        while index < length {
            let live = Swift.min(16, length - index)
            let chosen = maskLanes(conditions, isBytes: isBytes, index, live: live)
            if live == 16 {
                let other = v.map { F32Lanes.load($0, index) } ?? broadcast
                F32Lanes.store(other.replacing(with: F32Lanes.load(u, index), where: chosen), w, index)
            } else {
                let other = v.map { F32Lanes.loadPartial($0, index, live: live) } ?? broadcast
                let value = other.replacing(with: F32Lanes.loadPartial(u, index, live: live), where: chosen)
                F32Lanes.storePartial(value, w, index, live: live)
            }
            index += 16
        }
        if dtype != .f32 {
            storeFloats(outputBlock, into: target + start * outputSize, dtype: dtype, count: length)
        }
    }
    return result
}

/// mask ? a : b per element (mask BOOL, or computable with nonzero meaning true).
public func select(_ mask: Tensor, _ a: Tensor, _ b: Tensor, dtype: DType = .f32) throws -> Tensor {
    try selectTensors(mask, a, b, scalar: 0, dtype: dtype)
}

/// mask ? a : b per element, with a scalar `b`.
public func select(_ mask: Tensor, _ a: Tensor, _ b: Float, dtype: DType = .f32) throws -> Tensor {
    try selectTensors(mask, a, nil, scalar: b, dtype: dtype)
}
