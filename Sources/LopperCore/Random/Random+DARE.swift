import CKernels

/// The fused DARE pass: one sweep per block that widens the inputs, subtracts, draws
/// the Philox bits, masks, rescales, adds back (merged output) and rounds to the
/// output dtype. No whole-tensor f32 intermediate exists.

/// What a pruning pass writes.
public enum DeltaOutput: String, Sendable {
    /// `base + pruned delta`: a model.
    case merged
    /// The pruned delta alone.
    case delta
    /// A LoRA adapter with its factors pruned (`lopper prune`); kernels see each factor
    /// as a delta from zero and write it as `.delta`.
    case adapter
}

private let fusedBlock = 2048

/// How kept delta entries are rescaled. `delta * s` and `delta / s` differ in the last
/// bit, and a fused pass computes exactly the one the method wrote.
public enum Rescale: Sendable, Equatable {
    case times(Float)
    case dividedBy(Float)
}

/// One rescale in lanes, specialised into the fused loops.
protocol RescaleStep {
    /// `s`, and whether kept entries are divided by it (else multiplied): for the C kernels.
    var factor: Float { get }
    static var divides: Bool { get }
    func apply(_ x: SIMD16<Float>) -> SIMD16<Float>
    func apply(_ x: SIMD4<Float>) -> SIMD4<Float>
    func apply(_ x: Float) -> Float
}
struct Times: RescaleStep {
    let s: Float
    var factor: Float { s }
    static var divides: Bool { false }
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x * s }
    @inline(__always) func apply(_ x: SIMD4<Float>) -> SIMD4<Float> { x * s }
    @inline(__always) func apply(_ x: Float) -> Float { x * s }
}
struct DividedBy: RescaleStep {
    let s: Float
    var factor: Float { s }
    static var divides: Bool { true }
    @inline(__always) func apply(_ x: SIMD16<Float>) -> SIMD16<Float> { x / s }
    @inline(__always) func apply(_ x: SIMD4<Float>) -> SIMD4<Float> { x / s }
    @inline(__always) func apply(_ x: Float) -> Float { x / s }
}

/// `base + m * (finetuned - base) * scale` (merged) or `m * (finetuned - base) * scale`
/// (delta), with `m ~ Bernoulli(keep)` drawn exactly as `bernoulliMask(shape, keep:, key:)`.
public func fusedDare(base: Tensor, finetuned: Tensor, keep: Double, scale: Float, key: RandomKey,
                      output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    try fusedDare(base: base, finetuned: finetuned, keep: keep, rescale: .times(scale), key: key, output: output, dtype: dtype)
}

/// The fused DARE pass with kept entries multiplied or divided as `rescale` says.
public func fusedDare(base: Tensor, finetuned: Tensor, keep: Double, rescale: Rescale, key: RandomKey,
                      output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    MaskDrawLog.record(keep: keep, key: key, count: base.count)
    switch rescale {
    case .times(let s): return try fusedDare(base, finetuned, keep, Times(s: s), key, output, dtype)
    case .dividedBy(let s): return try fusedDare(base, finetuned, keep, DividedBy(s: s), key, output, dtype)
    }
}

private func fusedDare<Step: RescaleStep>(_ base: Tensor, _ finetuned: Tensor, _ keep: Double, _ scale: Step, _ key: RandomKey,
                                          _ output: DeltaOutput, _ dtype: DType?) throws -> Tensor {
    let rule = try KeepRule(keep)
    let outputType = dtype ?? finetuned.dtype
    if base.shape == finetuned.shape, base.dtype == finetuned.dtype, outputType == base.dtype {
        switch base.dtype {
        case .bf16: return try dareBF16(base, finetuned, rule, scale, key, output)
        case .f16: return try dareLanes(F16Lanes.self, base, finetuned, rule, scale, key, output)
        case .f32: return try dareLanes(F32Lanes.self, base, finetuned, rule, scale, key, output)
        default: break
        }
    }
    // Mixed dtypes: the general block path, with the mask bytes of the same rule.
    return try fusedDelta("dare", base: base, finetuned: finetuned, output: output, dtype: dtype) { range, delta in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: fusedBlock + 64) { buffer in
            // `fill` writes at the element's index: shift the buffer so `range` lands at 0.
            let kept = buffer.baseAddress! - range.lowerBound
            rule.fill(range, key: key, into: kept)
            for index in 0..<range.count { delta[index] = kept[range.lowerBound + index] != 0 ? scale.apply(delta[index]) : 0 }
        }
    }
}

/// The fused pass when inputs and output share one lane format: per 16 elements, widen
/// both inputs, subtract, rescale, mask (an AND with all-ones / zero lanes), add the base
/// back and narrow, with nothing stored in between. Bit for bit the block path's result:
/// the same f32 operations in the same order, and a dropped lane is +0 like the block
/// path's literal 0.
func dareLanes<Lanes: FloatLanes, Step: RescaleStep>(_: Lanes.Type, _ base: Tensor, _ finetuned: Tensor, _ rule: KeepRule,
                                          _ scale: Step, _ key: RandomKey, _ output: DeltaOutput) throws -> Tensor {
    let result = try Tensor(uninitialized: base.shape, dtype: base.dtype)
    let b = UnsafeRawPointer(base.data), f = UnsafeRawPointer(finetuned.data), out = result.data
    let merged = output == .merged
    let wide = Lanes.self == F32Lanes.self ? wideDareKernel(.f32) : nil
    let stream = base.count >= streamingThreshold && ck_has_streaming_stores() != 0
    Parallel.forEachChunk(count: base.count) { range in
        precondition(range.lowerBound & 63 == 0, "chunks must start on a 64-element group")
        var index = range.lowerBound
        if let wide {
            let whole = range.lowerBound / 64..<range.upperBound / 64
            dareWide(Lanes.self, wide, b, f, out, groups: whole, rule, scale, key, merged: merged, stream: stream)
            index = whole.upperBound * 64
        }
        while index < range.upperBound {
            dareGroup(Lanes.self, b, f, out, index, left: range.upperBound - index, rule, scale, key, merged)
            index += 64
        }
    }
    return result
}

/// Elements `index ..< index + min(64, left)` of `dareLanes`, `index` a multiple of 64.
@inline(__always)
func dareGroup<Lanes: FloatLanes, Step: RescaleStep>(_: Lanes.Type, _ b: UnsafeRawPointer, _ f: UnsafeRawPointer,
                                  _ out: UnsafeMutableRawPointer, _ index: Int, left: Int, _ rule: KeepRule,
                                  _ scale: Step, _ key: RandomKey, _ merged: Bool) {
    let all = SIMD16<Int32>(repeating: -1)
    let masks = rule.keepsAll ? (all, all, all, all) : rule.masks(group: index >> 6, key: key)
    if left >= 64 {
        dareStep(Lanes.self, b, f, out, index, masks.0, scale, merged, live: 16)
        dareStep(Lanes.self, b, f, out, index + 16, masks.1, scale, merged, live: 16)
        dareStep(Lanes.self, b, f, out, index + 32, masks.2, scale, merged, live: 16)
        dareStep(Lanes.self, b, f, out, index + 48, masks.3, scale, merged, live: 16)
    } else {
        // The tensor's last group: only its first `left` lanes exist.
        for part in 0..<(left + 15) / 16 {
            let mask = part == 0 ? masks.0 : part == 1 ? masks.1 : part == 2 ? masks.2 : masks.3
            dareStep(Lanes.self, b, f, out, index + 16 * part, mask, scale, merged, live: min(16, left - 16 * part))
        }
    }
}

/// Sixteen elements of `dareLanes` (a free function, not a closure: a nested function of
/// a generic function is not specialised, and every lane access became a witness call).
@inline(__always)
private func dareStep<Lanes: FloatLanes, Step: RescaleStep>(_: Lanes.Type, _ b: UnsafeRawPointer, _ f: UnsafeRawPointer,
                                         _ out: UnsafeMutableRawPointer, _ index: Int, _ mask: SIMD16<Int32>,
                                         _ scale: Step, _ merged: Bool, live: Int) {
    let low = live == 16 ? Lanes.load(b, index) : Lanes.loadPartial(b, index, live: live)
    let high = live == 16 ? Lanes.load(f, index) : Lanes.loadPartial(f, index, live: live)
    let delta = scale.apply(high - low)
    var value = floatFromBits(floatBits(delta) & unsafeBitCast(mask, to: SIMD16<UInt32>.self))
    if merged { value = value + low }
    if live == 16 { Lanes.store(value, out, index) } else { Lanes.storePartial(value, out, index, live: live) }
}

/// The same pass with a given mask: BOOL (kept or not) or a computable tensor of
/// per-element factors; kept entries are multiplied by `scale`.
public func fusedMask(base: Tensor, finetuned: Tensor, mask: Tensor, scale: Float,
                             output: DeltaOutput = .merged, dtype: DType? = nil) throws -> Tensor {
    guard mask.shape == base.shape else { throw TensorError.shapeMismatch("fusedMask", mask.shape, base.shape) }
    guard mask.dtype == .bool || mask.dtype.isComputable else { throw TensorError.unsupportedDType("fusedMask", mask.dtype) }
    return try fusedDelta("fusedMask", base: base, finetuned: finetuned, output: output, dtype: dtype) { range, delta in
        if mask.dtype == .bool {
            let bytes = mask.data.assumingMemoryBound(to: UInt8.self) + range.lowerBound
            for index in 0..<range.count { delta[index] = bytes[index] != 0 ? delta[index] * scale : 0 }
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: fusedBlock) { buffer in
                let factors = buffer.baseAddress!
                loadFloats(mask.data + range.lowerBound * mask.dtype.byteSize, dtype: mask.dtype, into: factors, count: range.count)
                for index in 0..<range.count { delta[index] *= factors[index] * scale }
            }
        }
    }
}

/// Runs `transform` on each block of `finetuned - base` (in f32, in place), then writes
/// it, or `base +` it, in the output dtype.
private func fusedDelta(_ operation: String, base: Tensor, finetuned: Tensor, output: DeltaOutput, dtype: DType?,
                        _ transform: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) throws -> Tensor {
    guard base.shape == finetuned.shape else { throw TensorError.shapeMismatch(operation, finetuned.shape, base.shape) }
    for type in [base.dtype, finetuned.dtype, dtype ?? finetuned.dtype] where !type.isComputable {
        throw TensorError.unsupportedDType(operation, type)
    }
    let outputType = dtype ?? finetuned.dtype
    let result = try Tensor(uninitialized: base.shape, dtype: outputType)
    Parallel.forEachChunk(count: base.count) { chunk in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * fusedBlock) { buffer in
        let b = buffer.baseAddress!, d = b + fusedBlock
        var start = chunk.lowerBound
        while start < chunk.upperBound {
            let n = min(fusedBlock, chunk.upperBound - start)
            loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: n)
            loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: d, count: n)
            for index in 0..<n { d[index] -= b[index] }
            transform(start..<start + n, d)
            if output == .merged { for index in 0..<n { d[index] += b[index] } }
            storeFloats(d, into: result.data + start * outputType.byteSize, dtype: outputType, count: n)
            start += n
        }
      }
    }
    return result
}
