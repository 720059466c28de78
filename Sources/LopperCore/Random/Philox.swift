/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011),
/// the counter-based generator behind every random mask in Lopper.
///
/// Stream layout (part of the reproducibility contract; changing it changes every mask):
/// * key     = the 64-bit seed as two 32-bit words (low, high);
/// * counter = (block low, block high, name hash low, name hash high), where the name
///   hash is FNV-1a 64 of the tensor name's UTF-8 bytes;
/// * a group of 8 blocks `8 g ..< 8 g + 8` is computed at once, one SIMD lane per block
///   (`blocks8`), and its 32 words are handed out in lane order, so that they reach
///   memory with no transpose:
/// * 32-bit draws (`uniform`): element `i` has group `g = i / 32`, `r = i % 32`, and uses
///   word `2 (r / 16) + r % 2` of block `8 g + r % 16 / 2`.
/// * 16-bit draws (Bernoulli masks: `bernoulliMask`, `dareFused`): two elements per
///   word, so the generator runs half as often. Element `i` has group `g = i / 64`,
///   `r = i % 64`, and uses the low (`r` even) or high (`r` odd) 16 bits of word `r / 16`
///   of block `8 g + r % 16 / 2`. Masks stay exact to 2^-32 through a rare second draw,
///   the *refinement* of element `i`: the high 16 bits of word 0 of the block with
///   counter `(i low, (i high) | 0x8000_0000, name hash low, name hash high)` (bit 63 of
///   the block number is never reached by the main stream). See `KeepRule`.
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
    /// `first + lane` is the low 32 bits of `result.j[lane]`; the high 32 bits are junk.
    ///
    /// 64-bit lanes are what SSE2 multiplies in (`pmuludq`: low 32 bits of each lane,
    /// 64-bit product), so the state stays in them for all ten rounds: the high product
    /// half is a shift, the low half needs nothing, and no lane is ever repacked. Junk in
    /// the high halves never reaches a low half (only right shifts by 32 of fresh
    /// products, xors and the masked multiply inputs touch them). Avoiding 32/64-bit lane
    /// conversions matters too: the stdlib's generic SIMD conversions are lane loops that
    /// only vectorise when inlined, which large callers do not get.
    ///
    /// Computed as two runs of four blocks: eight blocks of state in 64-bit lanes need all
    /// sixteen SSE2 registers and spill on every round; four fit.
    @inline(__always)
    static func blocks8(first: UInt64, key: RandomKey)
        -> (SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>, SIMD8<UInt64>) {
        let low = blocks4(first: first, key: key), high = blocks4(first: first &+ 4, key: key)
        return (SIMD8(lowHalf: low.0, highHalf: high.0), SIMD8(lowHalf: low.1, highHalf: high.1),
                SIMD8(lowHalf: low.2, highHalf: high.2), SIMD8(lowHalf: low.3, highHalf: high.3))
    }

    @inline(__always)
    static func blocks4(first: UInt64, key: RandomKey)
        -> (SIMD4<UInt64>, SIMD4<UInt64>, SIMD4<UInt64>, SIMD4<UInt64>) {
        let blocks = SIMD4<UInt64>(0, 1, 2, 3) &+ first
        var c0 = blocks, c1 = blocks &>> 32
        var c2 = SIMD4<UInt64>(repeating: key.nameHash), c3 = SIMD4<UInt64>(repeating: key.nameHash >> 32)
        var k0 = key.seed, k1 = key.seed >> 32
        let m0 = SIMD4<UInt64>(repeating: UInt64(multiplier0)), m1 = SIMD4<UInt64>(repeating: UInt64(multiplier1))
        let low = SIMD4<UInt64>(repeating: 0xFFFF_FFFF)
        // Kept as a loop: written out as ten calls of a round function, LLVM scalarised
        // every multiply (imul per lane).
        for round in 0..<10 {
            // Carries out of bit 31 of the key land in the junk half.
            if round > 0 { k0 &+= UInt64(weyl0); k1 &+= UInt64(weyl1) }
            let product0 = (c0 & low) &* m0
            let product1 = (c2 & low) &* m1
            c0 = (product1 &>> 32) ^ c1 ^ SIMD4(repeating: k0)
            c2 = (product0 &>> 32) ^ c3 ^ SIMD4(repeating: k1)
            c1 = product1
            c3 = product0
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
            let take = min(32 - skip, range.upperBound - element)
            let sink = skip == 0 && take == 32 ? out : scratch
            let (w0, w1, w2, w3) = blocks8(first: UInt64(group) &* 8, key: key)
            let raw = UnsafeMutableRawPointer(sink)
            raw.storeBytes(of: pairWords(w0, w1), toByteOffset: 0, as: SIMD16<UInt32>.self)
            raw.storeBytes(of: pairWords(w2, w3), toByteOffset: 64, as: SIMD16<UInt32>.self)
            if sink == scratch { out.update(from: scratch + skip, count: take) }
            out += take
            element += take
        }
    }

    /// Words of two `blocks8` results interleaved, `a`'s in the even 32-bit lanes and
    /// `b`'s in the odd ones: one mask, a shift and an or, no lane shuffles.
    @inline(__always)
    static func pairWords(_ a: SIMD8<UInt64>, _ b: SIMD8<UInt64>) -> SIMD16<UInt32> {
        unsafeBitCast((a & 0xFFFF_FFFF) | (b &<< 32), to: SIMD16<UInt32>.self)
    }

    /// The 16-bit halves of one `blocks8` word: the low half of block `lane` in 32-bit
    /// lane `2 lane`, the high half in `2 lane + 1`.
    @inline(__always)
    static func halves(_ word: SIMD8<UInt64>) -> SIMD16<Int32> {
        unsafeBitCast((word & 0xFFFF) | ((word & 0xFFFF_0000) &<< 16), to: SIMD16<Int32>.self)
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
