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
    try fusedDare(base, finetuned, keep, rescale, key, output, dtype, measure: false).0
}

/// The fused DARE pass and its `compareDelta` figures, measured in the same pass where a
/// wide kernel runs (the same figures: the same blocks summed in the same order), by a
/// second pass otherwise.
public func fusedDareMeasured(base: Tensor, finetuned: Tensor, keep: Double, rescale: Rescale, key: RandomKey,
                              output: DeltaOutput = .merged, dtype: DType? = nil) throws -> (output: Tensor, comparison: DeltaComparison) {
    let (result, measured) = try fusedDare(base, finetuned, keep, rescale, key, output, dtype, measure: true)
    let comparison = try measured ?? compareDelta(base: base, finetuned: finetuned, output: result, isMerged: output == .merged)
    return (result, comparison)
}

private func fusedDare(_ base: Tensor, _ finetuned: Tensor, _ keep: Double, _ rescale: Rescale, _ key: RandomKey,
                       _ output: DeltaOutput, _ dtype: DType?, measure: Bool) throws -> (Tensor, DeltaComparison?) {
    MaskDrawLog.record(keep: keep, key: key, count: base.count)
    switch rescale {
    case .times(let s): return try fusedDare(base, finetuned, keep, Times(s: s), key, output, dtype, measure: measure)
    case .dividedBy(let s): return try fusedDare(base, finetuned, keep, DividedBy(s: s), key, output, dtype, measure: measure)
    }
}

private func fusedDare<Step: RescaleStep>(_ base: Tensor, _ finetuned: Tensor, _ keep: Double, _ scale: Step, _ key: RandomKey,
                                          _ output: DeltaOutput, _ dtype: DType?, measure: Bool) throws -> (Tensor, DeltaComparison?) {
    let rule = try KeepRule(keep)
    let outputType = dtype ?? finetuned.dtype
    if base.shape == finetuned.shape, base.dtype == finetuned.dtype, outputType == base.dtype {
        switch base.dtype {
        case .bf16: return try dareBF16(base, finetuned, rule, scale, key, output, measure: measure)
        case .f16: return try dareLanes(F16Lanes.self, base, finetuned, rule, scale, key, output, measure: measure)
        case .f32: return try dareLanes(F32Lanes.self, base, finetuned, rule, scale, key, output, measure: measure)
        default: break
        }
    }
    // Mixed dtypes: the general block path, with the mask bytes of the same rule.
    return try fusedDelta("dare", base: base, finetuned: finetuned, output: output, dtype: dtype, measure: measure) { range, delta in
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
                                          _ scale: Step, _ key: RandomKey, _ output: DeltaOutput,
                                          measure: Bool) throws -> (Tensor, DeltaComparison?) {
    let result = try Tensor(uninitialized: base.shape, dtype: base.dtype)
    let b = UnsafeRawPointer(base.data), f = UnsafeRawPointer(finetuned.data), out = result.data
    let merged = output == .merged
    let wide = Lanes.self == F32Lanes.self ? wideDareKernel(.f32) : nil
    let stream = base.count >= streamingThreshold && ck_has_streaming_stores() != 0
    let measured = MeasuredChunks(count: base.count, active: measure && wide != nil)
    Parallel.forEachChunk(count: base.count) { range in
        precondition(range.lowerBound & 63 == 0, "chunks must start on a 64-element group")
        var index = range.lowerBound
        var figures: (DeltaComparison, end: Int)?
        if let wide {
            let whole = range.lowerBound / 64..<range.upperBound / 64
            figures = dareWide(Lanes.self, wide, DareTensors(base: base, finetuned: finetuned, output: result), groups: whole,
                               rule, scale, key, merged: merged, stream: stream, measure: measured.active)
            index = whole.upperBound * 64
        }
        while index < range.upperBound {
            dareGroup(Lanes.self, b, f, out, index, left: range.upperBound - index, rule, scale, key, merged)
            index += 64
        }
        if let figures { measured.finish(range, figures, DareTensors(base: base, finetuned: finetuned, output: result), merged: merged) }
    }
    return (result, measured.total)
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
