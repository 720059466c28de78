import CKernels
/// Bernoulli keep decisions on 16-bit draws, 64 elements per Philox call of 8 blocks,
/// shared by `bernoulliMask` and `fusedDare` so both select exactly the same elements.

/// A keep probability as a rule on the 16-bit draws of the stream layout (see `Philox`).
///
/// The threshold is `T = min(floor(keep * 2^32), 2^32 - 1)` (`2^32` for keep = 1), split
/// as `T = 65536 H + L`. Element `i` with draw `u` is kept when `u < H`, or when `u == H`
/// and its refinement draw `v` is below `L`. So P(keep) = H / 2^16 + L / 2^32 = T / 2^32:
/// the same resolution as comparing a 32-bit draw with `T`, while the generator runs for
/// 16 bits per element. Ties (`u == H`, probability 2^-16) are resolved one element at a
/// time off the fast path; when `L == 0` (keep a multiple of 2^-16) there are none to resolve.
struct KeepRule {
    /// `H`, 65536 when everything is kept.
    let high: Int32
    /// `L`, in `0 ..< 65536`.
    let low: Int32

    init(_ keep: Double) throws {
        guard keep.isFinite, keep >= 0, keep <= 1 else {
            throw TensorError.invalid("bernoulli: keep probability must be in [0, 1], got \(keep)")
        }
        let threshold: UInt64 = keep >= 1 ? 1 << 32 : UInt64(min(keep * 4_294_967_296, 4_294_967_295))
        high = Int32(threshold >> 16)
        low = Int32(threshold & 0xFFFF)
    }

    var keepsAll: Bool { high == 65536 }

    /// Keep masks (all ones: kept, zero: dropped) of elements `64 group ..< 64 group + 64`,
    /// sixteen per vector, in element order.
    @inline(__always)
    func masks(group: Int, key: RandomKey) -> Masks64 {
        let (w0, w1, w2, w3) = Philox.blocks8(first: UInt64(group) &* 8, key: key)
        let draws = Masks64(Philox.halves(w0), Philox.halves(w1), Philox.halves(w2), Philox.halves(w3))
        // Signed lane arithmetic throughout: unsigned compares and SIMDMask selects
        // scalarise on the SSE2 baseline. Draws and H fit in 17 bits, so the difference's
        // sign bit is the comparison, spread over the lane by the arithmetic shift.
        var kept = Masks64((draws.0 &- high) &>> 31, (draws.1 &- high) &>> 31,
                           (draws.2 &- high) &>> 31, (draws.3 &- high) &>> 31)
        if low != 0 {
            // A lane ties when draw ^ H is 0, the only value whose decrement is negative.
            let ties = (((draws.0 ^ high) &- 1) | ((draws.1 ^ high) &- 1)
                        | ((draws.2 ^ high) &- 1) | ((draws.3 ^ high) &- 1)) &>> 31
            let half = ties.lowHalf | ties.highHalf, quarter = half.lowHalf | half.highHalf
            if (quarter.lowHalf | quarter.highHalf) != .zero {
                resolveTies(&kept, draws, group: group, key: key)
            }
        }
        return kept
    }

    /// The slow path of `masks`: kept lanes among the tied ones, by their refinement draws.
    @inline(never)
    private func resolveTies(_ kept: inout Masks64, _ draws: Masks64, group: Int, key: RandomKey) {
        withUnsafeMutableBytes(of: &kept) { keptBytes in
            withUnsafeBytes(of: draws) { drawBytes in
                let keptLanes = keptBytes.bindMemory(to: Int32.self), drawLanes = drawBytes.bindMemory(to: Int32.self)
                for lane in 0..<64 where drawLanes[lane] == high {
                    keptLanes[lane] = Philox.refinement(group &* 64 &+ lane, key: key) < low ? -1 : 0
                }
            }
        }
    }

    /// BOOL bytes (1 kept, 0 dropped) of elements `range` into `target[range]`.
    func fill(_ range: Range<Int>, key: RandomKey, into target: UnsafeMutablePointer<UInt8>) {
        if keepsAll {
            (target + range.lowerBound).update(repeating: 1, count: range.count)
            return
        }
        var element = range.lowerBound
        // Whole groups inside the range on the wide kernel, where the CPU has one.
        let firstWhole = (range.lowerBound + 63) >> 6, endWhole = range.upperBound >> 6
        if endWhole > firstWhole, fillWide(groups: firstWhole..<endWhole, key: key, into: target) {
            fillGroups(element..<firstWhole << 6, key: key, into: target)
            element = endWhole << 6
        }
        fillGroups(element..<range.upperBound, key: key, into: target)
    }

    /// `fill` on the wide kernel of `path` for whole groups; false on the portable path.
    func fillWide(groups: Range<Int>, key: RandomKey, into target: UnsafeMutablePointer<UInt8>, _ path: KernelPath = .active) -> Bool {
        guard path != .portable else { return false }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { redo in
            var first = groups.lowerBound
            while first < groups.upperBound {
                let count = min(256, groups.upperBound - first)
                let bytes = target + first << 6
                if path == .avx512 {
                    ck_keep_mask_avx512(key.seed, key.nameHash, UInt32(high), UInt32(low), Int64(first), Int64(count), bytes, redo.baseAddress!)
                } else {
                    ck_keep_mask_avx2(key.seed, key.nameHash, UInt32(high), UInt32(low), Int64(first), Int64(count), bytes, redo.baseAddress!)
                }
                for index in 0..<count where redo[index] != 0 {
                    let group = first + index
                    fillGroups(group << 6..<(group + 1) << 6, key: key, into: target)
                }
                first += count
            }
        }
        return true
    }

    /// `fill` on the portable kernel.
    private func fillGroups(_ range: Range<Int>, key: RandomKey, into target: UnsafeMutablePointer<UInt8>) {
        var element = range.lowerBound
        while element < range.upperBound {
            let group = element >> 6, start = group << 6
            let bytes = maskBytes(masks(group: group, key: key))
            let skip = element - start, take = min(64 - skip, range.upperBound - element)
            if skip == 0 && take == 64 {
                UnsafeMutableRawPointer(target + start).storeBytes(of: bytes, as: SIMD64<UInt8>.self)
            } else {
                withUnsafeBytes(of: bytes) { all in
                    for offset in 0..<take { target[element + offset] = all[skip + offset] }
                }
            }
            element += take
        }
    }
}

/// 64 lanes as four vectors of sixteen, in element order.
typealias Masks64 = (SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>, SIMD16<Int32>)

/// Four vectors of all-ones / zero lanes as 64 bytes of 1 / 0.
@inline(__always)
func maskBytes(_ masks: Masks64) -> SIMD64<UInt8> {
    SIMD64(lowHalf: SIMD32(lowHalf: laneBytes(masks.0), highHalf: laneBytes(masks.1)),
           highHalf: SIMD32(lowHalf: laneBytes(masks.2), highHalf: laneBytes(masks.3)))
}

/// Sixteen all-ones / zero Int32 lanes as sixteen bytes of 1 / 0. Packs with shifts and
/// ors on stride-4 lane sets, since the plain truncating conversion scalarises on SSE2.
@inline(__always)
func laneBytes(_ mask: SIMD16<Int32>) -> SIMD16<UInt8> {
    let bits = unsafeBitCast(mask, to: SIMD16<UInt32>.self) & 1
    let even = bits.evenHalf, odd = bits.oddHalf
    let packed = even.evenHalf | (odd.evenHalf &<< 8) | (even.oddHalf &<< 16) | (odd.oddHalf &<< 24)
    return unsafeBitCast(packed, to: SIMD16<UInt8>.self)
}
