/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011),
/// the counter-based generator behind every random mask in Lopper.
///
/// Stream layout (part of the reproducibility contract; changing it changes every mask):
/// * key     = the 64-bit seed as two 32-bit words (low, high);
/// * counter = (block low, block high, name hash low, name hash high), where the name
///   hash is FNV-1a 64 of the tensor name's UTF-8 bytes;
/// * a group of 8 blocks `8 g ..< 8 g + 8` is computed at once, one SIMD lane per block
///   (`blocks8`), and its words are handed out word-major, so that the lanes reach
///   memory with no transpose:
/// * 32-bit draws (`uniform`): element `i` has group `g = i / 32`, `r = i % 32`, and uses
///   32-bit word `r / 8` of block `8 g + r % 8`.
/// * 16-bit draws (Bernoulli masks: `bernoulliMask`, `fusedDare`): two elements per
///   word, so the generator runs half as often. Element `i` has group `g = i / 64`,
///   `r = i % 64`, and uses the low (`r % 16 < 8`) or high (`r % 16 >= 8`) 16 bits of
///   word `r / 16` of block `8 g + r % 8`. Masks stay exact to 2^-32 through a rare
///   second draw, the *refinement* of element `i`: the high 16 bits of word 0 of the
///   block with counter `(i low, (i high) | 0x8000_0000, name hash low, name hash high)`
///   (bit 63 of the block number is never reached by the main stream). See `KeepRule`.
/// Bits therefore depend only on (seed, name, element index): never on threads or chunks.
public enum Philox {
    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let weyl0: UInt32 = 0x9E37_79B9
    static let weyl1: UInt32 = 0xBB67_AE85

    /// One Philox-4x32-10 block: the reference, one counter at a time.
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 { k &+= SIMD2(weyl0, weyl1) }
            let product0 = UInt64(multiplier0) * UInt64(c[0])
            let product1 = UInt64(multiplier1) * UInt64(c[2])
            let hi0 = UInt32(truncatingIfNeeded: product0 >> 32), lo0 = UInt32(truncatingIfNeeded: product0)
            let hi1 = UInt32(truncatingIfNeeded: product1 >> 32), lo1 = UInt32(truncatingIfNeeded: product1)
            c = SIMD4(hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0)
        }
        return c
    }

    /// Eight consecutive blocks `first ..< first + 8` in SIMD lanes: word j of block
    /// `first + lane` is `result.j[lane]`.
    ///
    /// Out of line on purpose: the 32/64-bit lane conversions around the multiplies are
    /// generic stdlib lane loops that LLVM turns into `pmuludq` and shuffles only when
    /// they are inlined into a small function. Inlined into a large kernel they stayed
    /// calls per conversion (measured: 2x slower); the call here costs nothing next to
    /// ~500 instructions of rounds. (A variant with the state in 64-bit lanes needs no
    /// conversions but more register copies on two-operand SSE2: 20% slower.)
    @inline(never)
    static func blocks8(first: UInt64, key: RandomKey)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        rounds(SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7) &+ first, key: key)
    }

    /// The same eight blocks with the even blocks in lanes 0 ..< 4 and the odd ones in
    /// lanes 4 ..< 8 (block `first + 2 l` in lane `l`, `first + 2 l + 1` in lane `4 + l`):
    /// the order of BF16 pairs split into even and odd elements (see `dareBF16`). Same
    /// blocks, same stream: only the lane order differs.
    @inline(never)
    static func blocks8Split(first: UInt64, key: RandomKey)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        rounds(SIMD8<UInt64>(0, 2, 4, 6, 1, 3, 5, 7) &+ first, key: key)
    }

    /// Two `blocks8Split` groups at once: blocks `first ..< first + 8` and
    /// `first + 8 ..< first + 16`, each in the lane order of `blocks8Split`. The two sets
    /// of rounds are independent chains interleaved in one loop, so that the multiplies
    /// and shuffles of one fill the latency of the other. Same blocks, same bits.
    @inline(never)
    static func blocks16Split(first: UInt64, key: RandomKey)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>,
            SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        let order = SIMD8<UInt64>(0, 2, 4, 6, 1, 3, 5, 7) &+ first
        return rounds2(order, order &+ 8, key: key)
    }

    /// Philox-4x32-10 on two sets of block numbers, interleaved.
    @inline(__always)
    private static func rounds2(_ lanesA: SIMD8<UInt64>, _ lanesB: SIMD8<UInt64>, key: RandomKey)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>,
            SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        var a0 = SIMD8<UInt32>(truncatingIfNeeded: lanesA)
        var a1 = SIMD8<UInt32>(truncatingIfNeeded: lanesA &>> 32)
        var b0 = SIMD8<UInt32>(truncatingIfNeeded: lanesB)
        var b1 = SIMD8<UInt32>(truncatingIfNeeded: lanesB &>> 32)
        var a2 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: key.nameHash))
        var a3 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: key.nameHash >> 32))
        var b2 = a2, b3 = a3
        var k0 = UInt32(truncatingIfNeeded: key.seed), k1 = UInt32(truncatingIfNeeded: key.seed >> 32)
        let m0 = SIMD8<UInt64>(repeating: UInt64(multiplier0)), m1 = SIMD8<UInt64>(repeating: UInt64(multiplier1))
        for round in 0..<10 {
            if round > 0 { k0 &+= weyl0; k1 &+= weyl1 }
            let pa0 = m0 &* SIMD8<UInt64>(truncatingIfNeeded: a0)
            let pb0 = m0 &* SIMD8<UInt64>(truncatingIfNeeded: b0)
            let pa1 = m1 &* SIMD8<UInt64>(truncatingIfNeeded: a2)
            let pb1 = m1 &* SIMD8<UInt64>(truncatingIfNeeded: b2)
            let nextA0 = SIMD8<UInt32>(truncatingIfNeeded: pa1 &>> 32) ^ a1 ^ k0
            let nextB0 = SIMD8<UInt32>(truncatingIfNeeded: pb1 &>> 32) ^ b1 ^ k0
            let nextA2 = SIMD8<UInt32>(truncatingIfNeeded: pa0 &>> 32) ^ a3 ^ k1
            let nextB2 = SIMD8<UInt32>(truncatingIfNeeded: pb0 &>> 32) ^ b3 ^ k1
            a1 = SIMD8<UInt32>(truncatingIfNeeded: pa1); b1 = SIMD8<UInt32>(truncatingIfNeeded: pb1)
            a3 = SIMD8<UInt32>(truncatingIfNeeded: pa0); b3 = SIMD8<UInt32>(truncatingIfNeeded: pb0)
            a0 = nextA0; b0 = nextB0; a2 = nextA2; b2 = nextB2
        }
        return (a0, a1, a2, a3, b0, b1, b2, b3)
    }

    /// Philox-4x32-10 on the block numbers `lanes`.
    @inline(__always)
    private static func rounds(_ lanes: SIMD8<UInt64>, key: RandomKey)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        var c0 = SIMD8<UInt32>(truncatingIfNeeded: lanes)
        var c1 = SIMD8<UInt32>(truncatingIfNeeded: lanes &>> 32)
        var c2 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: key.nameHash))
        var c3 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: key.nameHash >> 32))
        var k0 = UInt32(truncatingIfNeeded: key.seed), k1 = UInt32(truncatingIfNeeded: key.seed >> 32)
        let m0 = SIMD8<UInt64>(repeating: UInt64(multiplier0)), m1 = SIMD8<UInt64>(repeating: UInt64(multiplier1))
        for round in 0..<10 {
            if round > 0 { k0 &+= weyl0; k1 &+= weyl1 }
            let product0 = m0 &* SIMD8<UInt64>(truncatingIfNeeded: c0)
            let product1 = m1 &* SIMD8<UInt64>(truncatingIfNeeded: c2)
            let hi0 = SIMD8<UInt32>(truncatingIfNeeded: product0 &>> 32), lo0 = SIMD8<UInt32>(truncatingIfNeeded: product0)
            let hi1 = SIMD8<UInt32>(truncatingIfNeeded: product1 &>> 32), lo1 = SIMD8<UInt32>(truncatingIfNeeded: product1)
            let next0 = hi1 ^ c1 ^ k0
            let next2 = hi0 ^ c3 ^ k1
            c0 = next0; c1 = lo1; c2 = next2; c3 = lo0
        }
        return (c0, c1, c2, c3)
    }

    /// The refinement draw of element `index` (16 bits; see the stream layout above).
    static func refinement(_ index: Int, key: RandomKey) -> Int32 {
        let element = UInt64(index)
        let counter = SIMD4<UInt32>(UInt32(truncatingIfNeeded: element), UInt32(truncatingIfNeeded: element >> 32) | 0x8000_0000,
                                    UInt32(truncatingIfNeeded: key.nameHash), UInt32(truncatingIfNeeded: key.nameHash >> 32))
        let seed = SIMD2<UInt32>(UInt32(truncatingIfNeeded: key.seed), UInt32(truncatingIfNeeded: key.seed >> 32))
        return Int32(block(counter: counter, key: seed)[0] >> 16)
    }

    /// The 32-bit words for elements `range` of the stream `key`, in element order.
    static func words(_ range: Range<Int>, key: RandomKey, into target: UnsafeMutablePointer<UInt32>) {
        guard !range.isEmpty else { return }
        var buffer = SIMD32<UInt32>()   // scratch for partial groups, on the stack
        withUnsafeMutablePointer(to: &buffer) { pointer in
            fill(range, key: key, into: target, scratch: UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt32.self))
        }
    }

    private static func fill(_ range: Range<Int>, key: RandomKey, into target: UnsafeMutablePointer<UInt32>,
                             scratch: UnsafeMutablePointer<UInt32>) {
        var element = range.lowerBound
        var out = target
        while element < range.upperBound {
            let group = element / 32
            let skip = element - group * 32
            let whole = (range.upperBound - element) / 32
            if skip == 0, whole > 0, widePhiloxWords(key, groups: group..<group + whole, into: out) {
                out += whole * 32
                element += whole * 32
                continue
            }
            let take = min(32 - skip, range.upperBound - element)
            let sink = skip == 0 && take == 32 ? out : scratch
            let (w0, w1, w2, w3) = blocks8(first: UInt64(group) &* 8, key: key)
            let raw = UnsafeMutableRawPointer(sink)
            raw.storeBytes(of: w0, toByteOffset: 0, as: SIMD8<UInt32>.self)
            raw.storeBytes(of: w1, toByteOffset: 32, as: SIMD8<UInt32>.self)
            raw.storeBytes(of: w2, toByteOffset: 64, as: SIMD8<UInt32>.self)
            raw.storeBytes(of: w3, toByteOffset: 96, as: SIMD8<UInt32>.self)
            if sink == scratch { out.update(from: scratch + skip, count: take) }
            out += take
            element += take
        }
    }

    /// The 16-bit draws of one `blocks8` word: low halves in lanes 0 ..< 8, high halves
    /// in lanes 8 ..< 16 (a mask and a shift; no lane shuffles).
    @inline(__always)
    static func halves(_ word: SIMD8<UInt32>) -> SIMD16<Int32> {
        unsafeBitCast(SIMD16(lowHalf: word & 0xFFFF, highHalf: word &>> 16), to: SIMD16<Int32>.self)
    }
}

/// The stream of one tensor: a seed and the tensor's name.
public struct RandomKey: Hashable, Sendable {
    public let seed: UInt64
    public let nameHash: UInt64

    public init(seed: UInt64, name: String) {
        self.seed = seed
        nameHash = fnv1a64(name)
    }
}

/// FNV-1a, 64-bit: a fixed, documented hash (Swift's Hasher is seeded per process).
public func fnv1a64(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}
