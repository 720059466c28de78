// Linear-time selection on order keys.
//
// Values are mapped to UInt32 keys whose unsigned order is the value order with
// NaN below everything (key 0) and -0 equal to +0. Selection then works on plain
// integers: introselect = quickselect with a median-of-3 / ninther pivot and a
// branchless Lomuto partition; a run of bad pivots switches to a radix select
// (three histogram passes, always linear). Heavy ties are resolved by a second
// partition that splits off the keys equal to the pivot.

import Synchronization

/// Tuning of the selection kernels.
public enum Selection {
    /// Pivots that may each leave more than 3/4 of the range before introselect switches
    /// to radix select. Lowering it (tests use 0) forces the fallback.
    public static var badPivotLimit: Int {
        get { limit.load(ordering: .relaxed) }
        set { limit.store(Swift.max(0, newValue), ordering: .relaxed) }
    }
    private static let limit = Atomic<Int>(12)
}

/// Order keys of sixteen values: the IEEE bits with negatives flipped; NaN is 0.
@inline(__always)
func orderKeys(_ x: SIMD16<Float>) -> SIMD16<UInt32> {
    let bits = floatBits(x + 0)                     // -0 + 0 is +0: one key for both zeros
    let negative = unsafeBitCast(signed(bits) &>> 31, to: SIMD16<UInt32>.self)
    let key = bits ^ (negative | 0x8000_0000)
    return key.replacing(with: 0, where: x .!= x)
}

/// The value of an order key (key 0 is NaN).
@inline(__always)
func keyValue(_ key: UInt32) -> Float {
    if key == 0 { return .nan }
    return Float(bitPattern: key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key)
}

/// Writes the keys of elements `start ..< start + length` of `base` into `keys`.
@inline(__always)
func computeKeys<Lanes: FloatLanes>(_: Lanes.Type, _ base: UnsafeRawPointer, _ start: Int, _ length: Int,
                                    into keys: UnsafeMutablePointer<UInt32>) {
    let target = UnsafeMutableRawPointer(keys)
    var index = 0
    while index &+ 16 <= length {
        target.storeBytes(of: orderKeys(Lanes.load(base, start &+ index)), toByteOffset: index &* 4, as: SIMD16<UInt32>.self)
        index &+= 16
    }
    let live = length &- index
    if live > 0 {
        let key = orderKeys(Lanes.loadPartial(base, start &+ index, live: live))
        for lane in 0..<live { keys[index &+ lane] = key[lane] }
    }
}

/// Keys of elements `start ..< start + length` of a computable-dtype buffer.
func computeKeys(_ base: UnsafeRawPointer, _ dtype: DType, _ start: Int, _ length: Int, into keys: UnsafeMutablePointer<UInt32>) {
    switch dtype {
    case .f32: computeKeys(F32Lanes.self, base, start, length, into: keys)
    case .bf16: computeKeys(BF16Lanes.self, base, start, length, into: keys)
    case .f16: computeKeys(F16Lanes.self, base, start, length, into: keys)
    default: computeKeys(F64Lanes.self, base, start, length, into: keys)
    }
}

/// The key of ascending rank `rank` (0-based) among `keys[0..<count]`, which it reorders.
func selectKey(_ keys: UnsafeMutablePointer<UInt32>, count: Int, rank: Int) -> UInt32 {
    var low = 0, high = count
    var badSteps = 0
    let badStepLimit = Selection.badPivotLimit
    while high - low > 32 {
        let size = high - low
        if badSteps >= badStepLimit {
            return radixSelect(keys + low, count: size, rank: rank - low)
        }
        let pivot = choosePivot(keys, low, high)
        let split = partition(keys, low, high) { $0 < pivot }
        if rank < split {
            high = split
        } else if split > low {
            low = split
        } else {
            // No key below the pivot: it is the range minimum; split off the keys equal to it.
            let equalEnd = partition(keys, low, high) { $0 <= pivot }
            if rank < equalEnd { return pivot }
            low = equalEnd
        }
        if (high - low) * 4 > size * 3 { badSteps += 1 }
    }
    insertionSort(keys, low, high)
    return keys[rank]
}

/// Moves the keys satisfying `isLeft` to the front of `low..<high`; returns the split.
/// Branchless Lomuto: every step swaps, the store index advances by the comparison.
@inline(__always)
private func partition(_ keys: UnsafeMutablePointer<UInt32>, _ low: Int, _ high: Int, _ isLeft: (UInt32) -> Bool) -> Int {
    var store = low, index = low
    while index < high {
        let value = keys[index]
        keys[index] = keys[store]
        keys[store] = value
        store &+= isLeft(value) ? 1 : 0
        index &+= 1
    }
    return store
}

/// Median of three keys at low, middle and high (ninther of nine spread keys for large ranges).
@inline(__always)
private func choosePivot(_ keys: UnsafeMutablePointer<UInt32>, _ low: Int, _ high: Int) -> UInt32 {
    let middle = low + (high - low) / 2
    if high - low < 128 { return median(keys[low], keys[middle], keys[high - 1]) }
    let step = (high - low) / 8
    return median(median(keys[low], keys[low + step], keys[low + 2 * step]),
                  median(keys[middle - step], keys[middle], keys[middle + step]),
                  median(keys[high - 1 - 2 * step], keys[high - 1 - step], keys[high - 1]))
}

@inline(__always)
private func median(_ a: UInt32, _ b: UInt32, _ c: UInt32) -> UInt32 {
    Swift.max(Swift.min(a, b), Swift.min(Swift.max(a, b), c))
}

private func insertionSort(_ keys: UnsafeMutablePointer<UInt32>, _ low: Int, _ high: Int) {
    guard high - low > 1 else { return }
    for index in (low + 1)..<high {
        let value = keys[index]
        var hole = index
        while hole > low && keys[hole - 1] > value {
            keys[hole] = keys[hole - 1]
            hole -= 1
        }
        keys[hole] = value
    }
}

/// Radix select: fixes 11, 11 then 10 bits of the answer with one counting pass each.
/// Always linear; the fallback when pivots keep failing.
func radixSelect(_ keys: UnsafePointer<UInt32>, count: Int, rank: Int) -> UInt32 {
    var prefix: UInt32 = 0, known: UInt32 = 0, remaining = rank
    var counts = [Int](repeating: 0, count: 2048)
    for (shift, width) in [(21, 11), (10, 11), (0, 10)] as [(UInt32, UInt32)] {
        let digitMask: UInt32 = (1 << width) - 1
        for index in 0..<counts.count { counts[index] = 0 }
        for index in 0..<count where keys[index] & known == prefix {
            counts[Int((keys[index] >> shift) & digitMask)] += 1
        }
        var digit = 0
        while remaining >= counts[digit] {
            remaining -= counts[digit]
            digit += 1
        }
        prefix |= UInt32(digit) << shift
        known |= digitMask << shift
    }
    return prefix
}
