import CKernels

/// The fused DARE pass for BF16 inputs and output, in BF16 pairs.
///
/// Sixteen elements are loaded as eight 32-bit words of two BF16 each. The even elements
/// widen with a shift (`word << 16`), the odd ones with a mask (`word & 0xFFFF_0000`), and
/// the rounded results pack back with a shift, a mask and an or: no lane shuffles and no
/// 16/32-bit lane conversions (which are out-of-line generic loops on the SSE2 baseline).
/// The draws come in the same even/odd split straight from `Philox.blocks8Split` (the
/// documented stream, only in another lane order), compared with `H` of the `KeepRule`.
/// The f32 operations per element are exactly those of `dareLanes`.
///
/// Rounding to BF16 takes the plain nearest-even add; a NaN lane would need the careful
/// `narrowBF16`, so each 64-element group records whether any result is NaN and, if so
/// (only with NaN in the inputs or Inf - Inf), is redone by `dareGroup` in element order,
/// as is a group where a draw ties with `H` (probability 2^-16 per element when `L != 0`).
func dareBF16<Step: RescaleStep>(_ base: Tensor, _ finetuned: Tensor, _ rule: KeepRule, _ scale: Step, _ key: RandomKey,
              _ output: DeltaOutput, measure: Bool) throws -> (Tensor, DeltaComparison?) {
    let result = try Tensor(uninitialized: base.shape, dtype: .bf16)
    let b = UnsafeRawPointer(base.data), f = UnsafeRawPointer(finetuned.data), out = result.data
    let merged = output == .merged
    // A large output goes around the caches (non-temporal stores): it would only evict
    // the inputs, and a normal store first reads the line it writes.
    let stream = base.count >= streamingThreshold && ck_has_streaming_stores() != 0
    precondition(!stream || Int(bitPattern: out) & 15 == 0, "streaming stores need 16-byte alignment")
    let wide = wideDareKernel(.bf16)
    let measured = MeasuredChunks(count: base.count, active: measure && wide != nil)
    let tensors = DareTensors(base: base, finetuned: finetuned, output: result)
    Parallel.forEachChunk(count: base.count) { range in
        precondition(range.lowerBound & 63 == 0, "chunks must start on a 64-element group")
        let full = range.lowerBound + (range.count & ~63)
        var index = range.lowerBound
        var figures: (DeltaComparison, end: Int)?
        if let wide {
            figures = dareWide(BF16Lanes.self, wide, tensors, groups: index / 64..<full / 64, rule, scale, key,
                               merged: merged, stream: stream, measure: measured.active)
            index = full
        }
        // Loop-invariant branches outside the loop, so that each body is straight code.
        @inline(__always) func groups(merged: Bool, stream: Bool) {
            // Two groups at a time: their Philox rounds interleave (see `blocks16Split`).
            if !rule.keepsAll {
                while index + 128 <= full {
                    let (a0, a1, a2, a3, b0, b1, b2, b3) = Philox.blocks16Split(first: UInt64(index >> 6) &* 8, key: key)
                    if pairDraws(b, f, out, index, (a0, a1, a2, a3), rule, scale, key, merged: merged, stream: stream) {
                        dareGroup(BF16Lanes.self, b, f, out, index, left: 64, rule, scale, key, merged)
                    }
                    if pairDraws(b, f, out, index + 64, (b0, b1, b2, b3), rule, scale, key, merged: merged, stream: stream) {
                        dareGroup(BF16Lanes.self, b, f, out, index + 64, left: 64, rule, scale, key, merged)
                    }
                    index += 128
                }
            }
            while index < full {
                if pairGroup(b, f, out, index, rule, scale, key, merged: merged, stream: stream) {
                    dareGroup(BF16Lanes.self, b, f, out, index, left: 64, rule, scale, key, merged)
                }
                index += 64
            }
        }
        switch (merged, stream) {
        case (true, true): groups(merged: true, stream: true)
        case (true, false): groups(merged: true, stream: false)
        case (false, true): groups(merged: false, stream: true)
        case (false, false): groups(merged: false, stream: false)
        }
        // Non-temporal stores are weakly ordered: fence them before the chunk counts as done
        // (and before the plain stores of a redone group or the tail could be overtaken).
        if stream { ck_store_fence() }
        if full < range.upperBound {
            dareGroup(BF16Lanes.self, b, f, out, full, left: range.upperBound - full, rule, scale, key, merged)
        }
        if let figures { measured.finish(range, figures, tensors, merged: merged) }
    }
    return (result, measured.total)
}

/// Elements from which `dareBF16` writes its output with non-temporal stores (8 MiB of
/// BF16: well past what a core's caches would keep for the next kernel anyway).
let streamingThreshold = 1 << 22

/// Elements `index ..< index + 64` in BF16 pairs. True when the group must be redone in
/// element order: a tie of a draw with the threshold (which needs its refinement draw) or
/// a NaN result. Everything is on `SIMD4` (one SSE register): wider vectors came out of
/// LLVM's legalisation with lane shuffles and spills.
@inline(__always)
private func pairGroup<Step: RescaleStep>(_ b: UnsafeRawPointer, _ f: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ index: Int,
                       _ rule: KeepRule, _ scale: Step, _ key: RandomKey, merged: Bool, stream: Bool) -> Bool {
    let words = rule.keepsAll
        ? (SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>())
        : Philox.blocks8Split(first: UInt64(index >> 6) &* 8, key: key)
    return pairDraws(b, f, out, index, words, rule, scale, key, merged: merged, stream: stream)
}

/// `pairGroup` with the group's `blocks8Split` words already drawn.
@inline(__always)
private func pairDraws<Step: RescaleStep>(_ b: UnsafeRawPointer, _ f: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ index: Int,
                       _ words: (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>),
                       _ rule: KeepRule, _ scale: Step, _ key: RandomKey, merged: Bool, stream: Bool) -> Bool {
    let h = SIMD4<UInt32>(repeating: UInt32(truncatingIfNeeded: rule.high))
    let (w0, w1, w2, w3) = words
    var flags = SIMD4<UInt32>()
    pairStep(b, f, out, index, w0, h, scale, merged, stream, &flags)
    pairStep(b, f, out, index + 16, w1, h, scale, merged, stream, &flags)
    pairStep(b, f, out, index + 32, w2, h, scale, merged, stream, &flags)
    pairStep(b, f, out, index + 48, w3, h, scale, merged, stream, &flags)
    let half = flags.lowHalf | flags.highHalf
    return (half.x | half.y) >> 31 != 0 || (rule.low != 0 && tied(w0, w1, w2, w3, h))
}

/// Whether any 16-bit draw of the group equals `H` (then `u ^ H == 0` and its decrement
/// is the only negative one).
@inline(__always)
private func tied(_ w0: SIMD8<UInt32>, _ w1: SIMD8<UInt32>, _ w2: SIMD8<UInt32>, _ w3: SIMD8<UInt32>,
                  _ h: SIMD4<UInt32>) -> Bool {
    @inline(__always) func ties(_ word: SIMD4<UInt32>) -> SIMD4<UInt32> {
        (((word & 0xFFFF) ^ h) &- 1) | (((word &>> 16) ^ h) &- 1)
    }
    let any = ties(w0.lowHalf) | ties(w0.highHalf) | ties(w1.lowHalf) | ties(w1.highHalf)
        | ties(w2.lowHalf) | ties(w2.highHalf) | ties(w3.lowHalf) | ties(w3.highHalf)
    let half = any.lowHalf | any.highHalf
    return (half.x | half.y) >> 31 != 0
}

/// Sixteen elements at `index`: eight BF16 pairs in two registers, with the Philox word
/// `w` of `blocks8Split` (even blocks in its low half, odd blocks in its high half): the
/// even elements 0, 2, .., 6 draw the low halves of the even blocks, 8, .., 14 their high
/// halves; the odd elements likewise from the odd blocks (element `e` of the sixteen draws
/// the low or high half of block `e % 8` by the stream layout).
/// ORs into `flags` lanes whose top bit is set where a result is NaN.
@inline(__always)
private func pairStep<Step: RescaleStep>(_ b: UnsafeRawPointer, _ f: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ index: Int,
                      _ w: SIMD8<UInt32>, _ h: SIMD4<UInt32>, _ scale: Step, _ merged: Bool, _ stream: Bool,
                      _ flags: inout SIMD4<UInt32>) {
    let even = w.lowHalf, odd = w.highHalf
    pairQuad(b, f, out, index &* 2, even & 0xFFFF, odd & 0xFFFF, h, scale, merged, stream, &flags)
    pairQuad(b, f, out, index &* 2 &+ 16, even &>> 16, odd &>> 16, h, scale, merged, stream, &flags)
}

/// Four BF16 pairs at byte `offset`, with the draws of their even and odd elements.
@inline(__always)
private func pairQuad<Step: RescaleStep>(_ b: UnsafeRawPointer, _ f: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, _ offset: Int,
                      _ evenDraws: SIMD4<UInt32>, _ oddDraws: SIMD4<UInt32>, _ h: SIMD4<UInt32>,
                      _ scale: Step, _ merged: Bool, _ stream: Bool, _ flags: inout SIMD4<UInt32>) {
    let low = b.loadUnaligned(fromByteOffset: offset, as: SIMD4<UInt32>.self)
    let high = f.loadUnaligned(fromByteOffset: offset, as: SIMD4<UInt32>.self)
    // Draw < H as the sign of the difference (signed lanes: both fit in 17 bits).
    let evenKeep = unsafeBitCast(unsafeBitCast(evenDraws &- h, to: SIMD4<Int32>.self) &>> 31, to: SIMD4<UInt32>.self)
    let oddKeep = unsafeBitCast(unsafeBitCast(oddDraws &- h, to: SIMD4<Int32>.self) &>> 31, to: SIMD4<UInt32>.self)
    let even = pairLanes(low &<< 16, high &<< 16, evenKeep, scale, merged)
    let odd = pairLanes(low & 0xFFFF_0000, high & 0xFFFF_0000, oddKeep, scale, merged)
    let packed = (roundedBF16(even) &>> 16) | (roundedBF16(odd) & 0xFFFF_0000)
    if stream {
        ck_stream_u32x4(out + offset, packed)   // 16-byte aligned: see `dareBF16`
    } else {
        out.storeBytes(of: packed, toByteOffset: offset, as: SIMD4<UInt32>.self)
    }
    // |x| > 0x7F80_0000 (NaN) exactly when |x| + 0x007F_FFFF reaches the top bit.
    flags |= ((even & 0x7FFF_FFFF) &+ 0x007F_FFFF) | ((odd & 0x7FFF_FFFF) &+ 0x007F_FFFF)
}

/// `base + (finetuned - base) * scale` masked (or the masked delta alone), as f32 bits.
@inline(__always)
private func pairLanes<Step: RescaleStep>(_ baseBits: SIMD4<UInt32>, _ fineBits: SIMD4<UInt32>, _ keep: SIMD4<UInt32>,
                       _ scale: Step, _ merged: Bool) -> SIMD4<UInt32> {
    let low = unsafeBitCast(baseBits, to: SIMD4<Float>.self), high = unsafeBitCast(fineBits, to: SIMD4<Float>.self)
    let delta = scale.apply(high - low)
    var value = unsafeBitCast(unsafeBitCast(delta, to: SIMD4<UInt32>.self) & keep, to: SIMD4<Float>.self)
    if merged { value = value + low }
    return unsafeBitCast(value, to: SIMD4<UInt32>.self)
}

/// f32 bits plus the nearest-even rounding bias: the BF16 result is the top 16 bits.
/// Right for every non-NaN value (overflow rounds to Inf).
@inline(__always)
private func roundedBF16(_ bits: SIMD4<UInt32>) -> SIMD4<UInt32> {
    bits &+ 0x7FFF &+ ((bits &>> 16) & 1)
}
