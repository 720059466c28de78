#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// Exact selection in one pass over a large tensor, after Floyd and Rivest: a fixed sample
// of the order keys gives a bracket of keys that holds the answer's key all but surely;
// one pass counts the keys above the bracket (marking them, for a top-k mask) and lists
// the few keys inside it, among which the answer is then selected. Where the sample
// misled (the answer lies outside the bracket) the caller falls back to the histogram
// select. Exact either way; the sample depends only on the tensor, so a tensor takes the
// same path on every machine and thread count.

/// Sampled runs of consecutive elements, and their length: 2048 runs of one 16-lane key
/// vector, one or two cache lines each, so the sample costs about 2048 cache misses (and,
/// in a large tensor, as many TLB misses). From 4M elements on, the runs are four vectors
/// long: four times the sample for the same misses halves the bracket, so the pass lists
/// half the keys and, on AVX2, branches to list them half as often.
private let sampleRuns = 2048
private func sampleRun(_ count: Int) -> Int { count >= 1 << 22 ? 64 : 16 }

/// Tensors at least this large are selected by bracket (smaller ones cost little anyway).
let bracketSelectMinimum = 1 << 18

/// Half-width of the bracket, in standard deviations of a sample rank.
private let bracketDeviations = 5.0

/// The key of ascending rank `rank` among the order keys of `a`, or nil when the sample's
/// bracket missed it (tests give the `bracket`). `a.count >= bracketSelectMinimum`.
func bracketSelectKey(_ a: Tensor, rank: Int, bracket: ClosedRange<UInt32>? = nil) -> UInt32? {
    let pass = BracketPass(a, bracket ?? sampleBracket(a, rank: rank), mask: nil)
    return pass.select(rank: rank)
}

/// BOOL mask with exactly k ones on the k largest elements (ties: lower index first), or
/// nil when the sample's bracket missed the threshold. `a.count >= bracketSelectMinimum`.
func bracketTopKMask(_ a: Tensor, _ k: Int, bracket: ClosedRange<UInt32>? = nil) throws -> Tensor? {
    let result = try Tensor(uninitialized: a.shape, dtype: .bool)
    let mask = result.data.assumingMemoryBound(to: UInt8.self)
    let rank = a.count - k
    let pass = BracketPass(a, bracket ?? sampleBracket(a, rank: rank), mask: mask)
    guard let threshold = pass.select(rank: rank) else { return nil }
    pass.markListed(in: mask, threshold: threshold, keep: k)
    return result
}

/// Keys around ascending rank `rank`, from the sorted positions of a fixed sample.
private func sampleBracket(_ a: Tensor, rank: Int) -> ClosedRange<UInt32> {
    let count = a.count, runs = sampleRuns, run = sampleRun(count), samples = runs * run, stride = count / runs
    precondition(stride >= 2 * run, "bracket select needs at least \(2 * samples) elements")
    // The sample, then room for the wide select to reorder copies of it.
    let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * samples)
    defer { keys.deallocate() }
    let base = UnsafeRawPointer(a.data)
    for index in 0..<runs {
        // A fixed place in each stride, from a multiplicative hash: the runs do not line up with rows.
        let jitter = Int((UInt64(index) &* 0x9E37_79B9_7F4A_7C15) >> 40) % (stride - run + 1)
        computeKeys(base, a.dtype, index * stride + jitter, run, into: keys + index * run)
    }
    return bracket(sample: keys, count: samples, around: Double(rank) / Double(count), wide: WideSelect(a.dtype))
}

/// The keys of a sample (reordered; `3 * count` more keys of room after it for the `wide`
/// select, which reorders a copy) at the sample ranks that bracket the fraction `fraction`
/// of the population's ranks, `bracketDeviations` standard deviations either side; the
/// ends stay open (0, UInt32.max) where the bracket passes the sample's.
private func bracket(sample keys: UnsafeMutablePointer<UInt32>, count: Int, around fraction: Double,
                     wide: WideSelect?) -> ClosedRange<UInt32> {
    let center = fraction * Double(count)
    let spread = bracketDeviations * (Double(count) * fraction * (1 - fraction)).squareRoot() + 2
    let low = Int((center - spread).rounded(.down)), high = Int((center + spread).rounded(.up))
    func select(_ rank: Int) -> UInt32 {
        guard let wide else { return selectKey(keys, count: count, rank: rank) }
        (keys + count).update(from: keys, count: count)
        return wide.selectKey(keys + count, count: count, rank: rank, scratch: keys + 2 * count)
    }
    let upper = high >= count ? UInt32.max : select(high)
    let lower = low < 0 ? 0 : select(low)
    return lower...upper
}

/// The key of ascending rank `rank` among `keys[0..<count]` (reordered), all within
/// `lower ... lower + width`. A long list is counted by the high bits of its offsets from
/// `lower` (at most 65536 bins, one pass), which fixes the bin that holds the answer; the keys
/// in that bin are kept and the same is done on them. Linear, and heavy ties cost nothing more.
private func rangeSelect(_ keys: UnsafeMutablePointer<UInt32>, count: Int, rank: Int, lower: UInt32, width: UInt32) -> UInt32 {
    if count <= 4096 { return selectKey(keys, count: count, rank: rank) }
    let shift = UInt32(Swift.max(0, (32 - width.leadingZeroBitCount) - 16)), bins = Int(width >> shift) + 1
    let counts = UnsafeMutablePointer<Int>.allocate(capacity: bins)
    defer { counts.deallocate() }
    counts.initialize(repeating: 0, count: bins)
    for index in 0..<count { counts[Int((keys[index] &- lower) >> shift)] &+= 1 }
    var bin = 0, rest = rank
    while rest >= counts[bin] { rest -= counts[bin]; bin += 1 }
    let binLower = lower &+ UInt32(bin) << shift
    if shift == 0 { return binLower }
    var kept = 0
    for index in 0..<count {
        let key = keys[index]
        keys[kept] = key
        kept &+= (key &- binLower) >> shift == 0 ? 1 : 0
    }
    return rangeSelect(keys, count: kept, rank: rest, lower: binLower, width: (1 << shift) - 1)
}

/// One pass over `a` with a bracket of keys: per chunk, the count of keys above it and
/// the list of keys inside it in index order. Chunk c's list starts at element
/// c * chunkSize of `keys` (and `offsets`, with a mask), which reserve room for every
/// element in a `ListRoom` kept between passes; only the listed ones are touched.
/// A mask is first marked above the bracket's middle key, a guess at the threshold: once
/// the threshold is known, only the listed places where the guess was wrong are written,
/// and the mask's cache lines, long gone from the cache, are mostly left alone.
private final class BracketPass {
    let chunk = Parallel.chunkSize, chunks: Int, count: Int
    let bracket: ClosedRange<UInt32>
    let markedAbove: UInt32
    let wide: WideSelect?
    let keys: UnsafeMutablePointer<UInt32>
    let offsets: UnsafeMutablePointer<UInt32>?
    var above: [Int], listed: [Int]
    private let room: ListRoom

    /// With a `mask`, writes 1 there for keys above `markedAbove` and 0 for the others.
    init(_ a: Tensor, _ bracket: ClosedRange<UInt32>, mask: UnsafeMutablePointer<UInt8>?) {
        count = a.count
        self.bracket = bracket
        markedAbove = bracket.lowerBound + (bracket.upperBound - bracket.lowerBound) / 2
        chunks = (count + chunk - 1) / chunk
        room = ListRoom.take(count)
        keys = room.keys
        offsets = mask == nil ? nil : room.offsets
        above = [Int](repeating: 0, count: chunks)
        listed = [Int](repeating: 0, count: chunks)
        let base = UnsafeRawPointer(a.data), dtype = a.dtype, wide = WideSelect(dtype)
        self.wide = wide
        let keys = keys, offsets = offsets, chunk = chunk, markedAbove = markedAbove
        let lower = bracket.lowerBound, upper = bracket.upperBound, width = upper &- lower
        above.withUnsafeMutableBufferPointer { above in
            listed.withUnsafeMutableBufferPointer { listed in
                Parallel.forEachChunk(count: count, chunk: chunk) { range in
                    let index = range.lowerBound / chunk
                    let keysOut = keys + range.lowerBound, offsetsOut = offsets.map { $0 + range.lowerBound }
                    if let wide {
                        (above[index], listed[index]) =
                            wide.bracketPass(base, range, bracket, markedAbove: markedAbove, target: mask,
                                             keys: keysOut, offsets: offsetsOut)
                        return
                    }
                    var greater = 0, inside = 0
                    forEachKeyBlock(base, dtype, range) { blockKeys, start, length in
                        greater &+= bracketBlock(blockKeys, length, lower: lower, width: width, markedAbove: markedAbove,
                                                 mask: mask.map { $0 + start },
                                                 keys: keysOut, offsets: offsetsOut, firstOffset: start - range.lowerBound,
                                                 listed: &inside)
                    }
                    (above[index], listed[index]) = (greater, inside)
                }
            }
        }
    }

    deinit { room.giveBack(listed: listed) }

    /// The key of ascending rank `rank` in the whole tensor, when the bracket holds it.
    func select(rank: Int) -> UInt32? {
        let listed = listed, inside = listed.reduce(0, +), below = count - above.reduce(0, +) - inside
        guard rank >= below && rank < below + inside else { return nil }
        if bracket.lowerBound == bracket.upperBound { return bracket.lowerBound }  // a heavy tie: every listed key is it
        // The wide select reorders the keys through two more buffers of their size.
        let work = UnsafeMutablePointer<UInt32>.allocate(capacity: wide == nil ? inside : 3 * inside)
        defer { work.deallocate() }
        var at = 0
        for index in 0..<chunks {
            (work + at).update(from: keys + index * chunk, count: listed[index])
            at += listed[index]
        }
        if let wide { return wide.selectKey(work, count: inside, rank: rank - below, scratch: work + inside) }
        return rangeSelect(work, count: inside, rank: rank - below, lower: bracket.lowerBound,
                           width: bracket.upperBound &- bracket.lowerBound)
    }

    /// Marks the listed keys above `threshold` in `mask`, and, in index order, as many of
    /// those equal to it as make `keep` marks in all; unmarks the others.
    func markListed(in mask: UnsafeMutablePointer<UInt8>, threshold: UInt32, keep: Int) {
        guard let offsets else { preconditionFailure("markListed needs a pass with a mask") }
        let listed = listed, keys = keys, chunk = chunk, markedAbove = markedAbove
        var greater = [Int](repeating: 0, count: chunks), equal = [Int](repeating: 0, count: chunks)
        greater.withUnsafeMutableBufferPointer { greater in
            equal.withUnsafeMutableBufferPointer { equal in
                Parallel.forEach(chunks) { index in
                    (greater[index], equal[index]) = countAround(threshold, keys + index * chunk, listed[index])
                }
            }
        }
        var tiesLeft = keep - above.reduce(0, +) - greater.reduce(0, +)
        var quota = [Int](repeating: 0, count: chunks)
        for index in 0..<chunks {
            quota[index] = Swift.min(tiesLeft, equal[index])
            tiesLeft -= quota[index]
        }
        quota.withUnsafeBufferPointer { quota in
            Parallel.forEach(chunks) { index in
                let list = keys + index * chunk, places = offsets + index * chunk, target = mask + index * chunk
                let allowed = quota[index]
                var ties = 0, spare: UInt8 = 0
                withUnsafeMutablePointer(to: &spare) { spare in
                    // Without a branch: where the pass guessed right, the write goes to `spare`.
                    for entry in 0..<listed[index] {
                        let key = list[entry]
                        let isEqual = key == threshold ? 1 : 0, isAbove = key > threshold ? 1 : 0
                        let isKeptTie = isEqual & (ties < allowed ? 1 : 0)
                        let marked = isAbove | isKeptTie, guessed = key > markedAbove ? 1 : 0
                        let place = marked == guessed ? spare : target + Int(places[entry])
                        place.pointee = UInt8(truncatingIfNeeded: marked)
                        ties &+= isEqual
                    }
                }
            }
        }
    }
}

/// The lists of bracket passes (a key and an offset for each element, few of them used), kept
/// from call to call: fresh ones would fault on each chunk's first listed key, every call,
/// which cost more than the pass itself. One room is kept (the largest given back). The pages
/// that calls touched are dropped once they could pass a sixteenth of it, so that little stays
/// resident whatever the keys. Not the buffer cache: these sizes match tensors', and lists
/// there pushed tensors out of it.
private final class ListRoom: @unchecked Sendable {
    private static let kept = Mutex<ListRoom?>(nil)
    let capacity: Int
    let keys: UnsafeMutablePointer<UInt32>, offsets: UnsafeMutablePointer<UInt32>
    private let base: UnsafeMutableRawPointer, bytes: Int, page: Int
    /// Per chunk, the most keys any call listed since the pages were last dropped.
    private var highWater: [Int]

    private init(capacity: Int) {
        self.capacity = capacity
        page = Int(sysconf(Int32(_SC_PAGESIZE)))
        bytes = (2 * capacity * MemoryLayout<UInt32>.stride + page - 1) / page * page
        base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: page)
        keys = base.assumingMemoryBound(to: UInt32.self)
        offsets = keys + capacity
        highWater = [Int](repeating: 0, count: (capacity + Parallel.chunkSize - 1) / Parallel.chunkSize)
    }

    deinit { base.deallocate() }

    /// The kept room when it holds `count` elements' lists, else a new one.
    static func take(_ count: Int) -> ListRoom {
        let kept = kept.withLock { room -> ListRoom? in
            guard let candidate = room, candidate.capacity >= count else { return nil }
            room = nil
            return candidate
        }
        return kept ?? ListRoom(capacity: count)
    }

    /// After a pass that listed `listed` keys per chunk: kept, unless a larger room is.
    func giveBack(listed: [Int]) {
        for (chunk, count) in listed.enumerated() { highWater[chunk] = Swift.max(highWater[chunk], count) }
        // A chunk's listed keys, and its offsets, span at most two pages more than their bytes;
        // a chunk that listed nothing touched nothing.
        let resident = highWater.reduce(0) { $0 + ($1 == 0 ? 0 : 2 * ($1 * MemoryLayout<UInt32>.stride + 2 * page)) }
        if resident > bytes / 16 {
            _ = madvise(base, bytes, MADV_DONTNEED)
            highWater = highWater.map { _ in 0 }
        }
        ListRoom.kept.withLock { room in
            if room == nil || room!.capacity <= capacity { room = self }
        }
    }
}

/// The portable bracket pass over one block of keys: returns the count above the bracket
/// `lower ... lower + width`, marks those above `markedAbove` in `mask` (0 elsewhere), and
/// appends the keys inside it at `keys[listed...]` with their offsets, `firstOffset` for the first key.
/// Every key of a vector with a key inside is written at the list's end, which moves only for those inside.
@inline(never)
private func bracketBlock(_ blockKeys: UnsafePointer<UInt32>, _ length: Int, lower: UInt32, width: UInt32,
                          markedAbove: UInt32, mask: UnsafeMutablePointer<UInt8>?, keys: UnsafeMutablePointer<UInt32>,
                          offsets: UnsafeMutablePointer<UInt32>?, firstOffset: Int, listed: inout Int) -> Int {
    let upper = SIMD16<UInt32>(repeating: lower &+ width)
    let lowers = SIMD16<UInt32>(repeating: lower), widths = SIMD16<UInt32>(repeating: width)
    let marks = SIMD16<UInt32>(repeating: markedAbove)
    var aboveLanes = SIMD16<UInt32>(), end = listed, index = 0
    while index &+ 16 <= length {
        let key = UnsafeRawPointer(blockKeys + index).loadUnaligned(as: SIMD16<UInt32>.self)
        let isAbove = SIMD16<UInt32>(repeating: 0).replacing(with: 1, where: key .> upper)
        aboveLanes &+= isAbove
        if let mask {
            let marked = SIMD16<UInt32>(repeating: 0).replacing(with: 1, where: key .> marks)
            UnsafeMutableRawPointer(mask + index).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: marked), as: SIMD16<UInt8>.self)
        }
        let inside = SIMD16<UInt32>(repeating: 0).replacing(with: 1, where: key &- lowers .<= widths)
        if inside != SIMD16<UInt32>() {
            for lane in 0..<16 {
                keys[end] = key[lane]
                offsets?[end] = UInt32(truncatingIfNeeded: firstOffset &+ index &+ lane)
                end &+= Int(inside[lane])
            }
        }
        index &+= 16
    }
    var above = Int(aboveLanes.wrappedSum())
    for index in index..<length {
        let key = blockKeys[index]
        above &+= key > upper[0] ? 1 : 0
        mask?[index] = key > markedAbove ? 1 : 0
        keys[end] = key
        offsets?[end] = UInt32(truncatingIfNeeded: firstOffset &+ index)
        end &+= key &- lower <= width ? 1 : 0
    }
    listed = end
    return above
}

/// The counts of `keys[0..<count]` above and equal to `threshold`, in lanes (a scalar loop
/// branches on each key, and about half of them are above).
private func countAround(_ threshold: UInt32, _ keys: UnsafePointer<UInt32>, _ count: Int) -> (above: Int, equal: Int) {
    let splat = SIMD16<UInt32>(repeating: threshold), one = SIMD16<UInt32>(repeating: 1), none = SIMD16<UInt32>()
    var above = SIMD16<UInt32>(), equal = SIMD16<UInt32>(), index = 0
    while index &+ 16 <= count {
        let key = UnsafeRawPointer(keys + index).loadUnaligned(as: SIMD16<UInt32>.self)
        above &+= none.replacing(with: one, where: key .> splat)
        equal &+= none.replacing(with: one, where: key .== splat)
        index &+= 16
    }
    var aboveTotal = Int(above.wrappedSum()), equalTotal = Int(equal.wrappedSum())
    for index in index..<count {
        aboveTotal &+= keys[index] > threshold ? 1 : 0
        equalTotal &+= keys[index] == threshold ? 1 : 0
    }
    return (aboveTotal, equalTotal)
}
