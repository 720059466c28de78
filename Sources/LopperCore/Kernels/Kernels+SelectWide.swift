import CKernels

/// The selection passes on the wide kernels (Sources/CKernels/WideKernels.c) for F32 and
/// BF16 values on AVX2 or AVX-512; nil elsewhere (the Swift loops then run). Counts and
/// mask bytes are integers: the same on every path.
struct WideSelect {
    private let bf16: Int32
    private let path: KernelPath

    init?(_ dtype: DType, _ path: KernelPath = .active) {
        guard path != .portable, dtype == .f32 || dtype == .bf16 else { return nil }
        bf16 = dtype == .bf16 ? 1 : 0
        self.path = path
    }

    /// Adds the low 16 bits of each key in elements `range` whose high 16 bits are `bucket` to `table`.
    func lowCounts(_ base: UnsafeRawPointer, _ range: Range<Int>, bucket: UInt32, into table: UnsafeMutablePointer<UInt32>) {
        let start = Int64(range.lowerBound), count = Int64(range.count)
        if path == .avx512 { ck_key_low_counts_avx512(base, bf16, start, count, bucket, table) }
        else { ck_key_low_counts_avx2(base, bf16, start, count, bucket, table) }
    }

    /// Mask bytes of elements `range` at `target[range]`: 1 above `threshold`, 2 equal, 0
    /// below; with the counts of keys above and equal.
    func maskAtThreshold(_ base: UnsafeRawPointer, _ range: Range<Int>, threshold: UInt32,
                         into target: UnsafeMutablePointer<UInt8>) -> (above: Int, equal: Int) {
        var above: Int64 = 0, equal: Int64 = 0
        let start = Int64(range.lowerBound), count = Int64(range.count)
        if path == .avx512 { ck_mask_at_threshold_avx512(base, bf16, start, count, threshold, target, &above, &equal) }
        else { ck_mask_at_threshold_avx2(base, bf16, start, count, threshold, target, &above, &equal) }
        return (Int(above), Int(equal))
    }

    /// Bracket pass over elements `range` (see `BracketPass`): counts keys above `bracket`,
    /// lists the keys inside it, in index order, at `keys` with their offsets from the range's
    /// start at `offsets` when given, and writes 1 at `target[range]` (when given) for keys
    /// above `markedAbove`, else 0.
    func bracketPass(_ base: UnsafeRawPointer, _ range: Range<Int>, _ bracket: ClosedRange<UInt32>, markedAbove: UInt32,
                     target: UnsafeMutablePointer<UInt8>?, keys: UnsafeMutablePointer<UInt32>,
                     offsets: UnsafeMutablePointer<UInt32>?) -> (above: Int, listed: Int) {
        var above: Int64 = 0, listed: Int64 = 0
        let start = Int64(range.lowerBound), count = Int64(range.count)
        let lower = bracket.lowerBound, upper = bracket.upperBound
        if path == .avx512 {
            ck_bracket_pass_avx512(base, bf16, start, count, lower, upper, markedAbove, target, keys, offsets, &above, &listed)
        } else {
            ck_bracket_pass_avx2(base, bf16, start, count, lower, upper, markedAbove, target, keys, offsets, &above, &listed)
        }
        return (Int(above), Int(listed))
    }

    /// The key of ascending rank `rank` among `keys[0..<count]` (reordered, like `scratch`,
    /// which holds 2 * count keys): the same key as `selectKey`. After `rounds` partitions
    /// a counting select finishes (tests pass 0 to check it).
    func selectKey(_ keys: UnsafeMutablePointer<UInt32>, count: Int, rank: Int, scratch: UnsafeMutablePointer<UInt32>,
                   rounds: Int32 = 48) -> UInt32 {
        if path == .avx512 { return ck_select_key_avx512(keys, Int64(count), Int64(rank), scratch, rounds) }
        return ck_select_key_avx2(keys, Int64(count), Int64(rank), scratch, rounds)
    }

    /// The top-k mask of the row of `cols` elements at `row` into `target`, by a bracket from
    /// `runs` sampled runs of sixteen keys, `deviations` standard deviations wide; false
    /// when the bracket missed (`target` is then no mask). `scratch` holds 5 * cols keys;
    /// the row at `next`, when given, is prefetched.
    func rowTopKMask(_ row: UnsafeRawPointer, cols: Int, k: Int, runs: Int, deviations: Double, next: UnsafeRawPointer?,
                     scratch: UnsafeMutablePointer<UInt32>, into target: UnsafeMutablePointer<UInt8>) -> Bool {
        precondition(cols >= 32 * runs, "rowTopKMask: \(runs) runs need rows of \(32 * runs) elements")
        let cols = Int64(cols), k = Int64(k), runs = Int64(runs)
        if path == .avx512 { return ck_row_top_k_avx512(row, bf16, cols, k, runs, deviations, next, scratch, target) != 0 }
        return ck_row_top_k_avx2(row, bf16, cols, k, runs, deviations, next, scratch, target) != 0
    }
}
