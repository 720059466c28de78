// The k-th largest key of a whole tensor by histograms, without sorting or copying:
// one pass counts the high 16 bits of every order key (65536 bins), which fixes the
// bucket that holds the answer; a second pass counts the low 16 bits of the keys in that
// bucket. Sequential reads, computed keys, exact: the same key introselect finds.

/// Bins of one histogram pass: the 16 bits of a key that it counts.
let keyBins = 1 << 16

/// The key of ascending rank `rank` among the order keys of `a` (any computable dtype).
func histogramSelectKey(_ a: Tensor, rank: Int) -> UInt32 {
    precondition(rank >= 0 && rank < a.count)
    let high = keyHistogram(a, within: nil)
    let (bucket, rest) = locate(rank, in: high)
    // BF16 keys differ only in their high 16 bits: one bucket, one key.
    if a.dtype == .bf16 { return bf16Key(bucket: bucket) }
    let low = keyHistogram(a, within: bucket)
    let (digit, _) = locate(rest, in: low)
    return bucket << 16 | digit
}

/// The key of a BF16 value whose key's high 16 bits are `bucket`: positive values (top
/// bit of the key set) have zero low bits, negative ones all ones, NaN is key 0.
private func bf16Key(bucket: UInt32) -> UInt32 {
    if bucket == 0 { return 0 }
    return bucket & 0x8000 != 0 ? bucket << 16 : bucket << 16 | 0xFFFF
}

/// The bin that holds ascending rank `rank`, and the rank within it.
func locate(_ rank: Int, in counts: [Int]) -> (UInt32, Int) {
    var remaining = rank
    for (bin, count) in counts.enumerated() {
        if remaining < count { return (UInt32(bin), remaining) }
        remaining -= count
    }
    preconditionFailure("rank \(rank) is past the histogram's total")
}

/// Counts of the high 16 bits of every key (`within` nil), or of the low 16 bits of the
/// keys whose high bits are `within`; summed over one contiguous part per thread (exact
/// integers: the same totals on any thread count). Two interleaved tables per part, so
/// that runs of keys in one bin do not wait on each other's increments.
func keyHistogram(_ a: Tensor, within bucket: UInt32?) -> [Int] {
    let parts = Swift.max(1, Swift.min(Parallel.threads, a.count / (1 << 18)))
    let partSize = (a.count + parts - 1) / parts
    let tables = 2 * parts
    let counts = UnsafeMutablePointer<UInt32>.allocate(capacity: tables * keyBins)
    defer { counts.deallocate() }
    counts.initialize(repeating: 0, count: tables * keyBins)
    let base = UnsafeRawPointer(a.data), dtype = a.dtype, count = a.count, wide = WideSelect(dtype)
    Parallel.forEach(parts) { part in
        let even = counts + 2 * part * keyBins, odd = even + keyBins
        let start = part * partSize, end = Swift.min(count, start + partSize)
        if let bucket, let wide, start < end {
            wide.lowCounts(base, start..<end, bucket: bucket, into: even)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: kernelBlock) { buffer in
            let keys = buffer.baseAddress!
            var block = start
            while block < end {
                let length = Swift.min(kernelBlock, end - block)
                computeKeys(base, dtype, block, length, into: keys)
                if let bucket {
                    for index in 0..<length where keys[index] >> 16 == bucket { even[Int(keys[index] & 0xFFFF)] &+= 1 }
                } else {
                    var index = 0
                    while index + 1 < length {
                        even[Int(keys[index] >> 16)] &+= 1
                        odd[Int(keys[index + 1] >> 16)] &+= 1
                        index += 2
                    }
                    if index < length { even[Int(keys[index] >> 16)] &+= 1 }
                }
                block += length
            }
        }
    }
    var total = [Int](repeating: 0, count: keyBins)
    for table in 0..<tables {
        for bin in 0..<keyBins { total[bin] += Int(counts[table * keyBins + bin]) }
    }
    return total
}
