import CKernels

/// A wide kernel of the fused DARE pass (Sources/CKernels/WideKernels.c) for one dtype.
typealias WideDareKernel = @convention(c) (UnsafePointer<ck_dare_args>?, Int64, Int64, UnsafeMutablePointer<UInt8>?) -> Void

/// The wide kernel of `path` for `dtype`, nil where the portable Swift pass runs.
func wideDareKernel(_ dtype: DType, _ path: KernelPath = .active) -> WideDareKernel? {
    switch (dtype, path) {
    case (.bf16, .avx2): ck_dare_bf16_avx2
    case (.bf16, .avx512): ck_dare_bf16_avx512
    case (.f32, .avx2): ck_dare_f32_avx2
    case (.f32, .avx512): ck_dare_f32_avx512
    default: nil
    }
}

/// Whole 64-element groups `groups` of the fused DARE pass on a wide kernel. The groups it
/// flags (a draw tied with `H`, or a NaN result that needs the careful rounding) are redone
/// here in element order by `dareGroup`, as the portable pass redoes them: same bits.
/// With `measure`, also the `compareDelta` figures of the whole comparison blocks from the
/// first group (`groups.lowerBound` a multiple of 16): see `wideGroups`.
func dareWide<Lanes: FloatLanes, Step: RescaleStep>(_: Lanes.Type, _ kernel: WideDareKernel, _ tensors: DareTensors,
                                                    groups: Range<Int>, _ rule: KeepRule, _ scale: Step, _ key: RandomKey,
                                                    merged: Bool, stream: Bool, measure: Bool) -> (DeltaComparison, end: Int) {
    let b = UnsafeRawPointer(tensors.base.data), f = UnsafeRawPointer(tensors.finetuned.data), out = tensors.output.data
    let args = ck_dare_args(base: b, finetuned: f, output: out, seed: key.seed, name_hash: key.nameHash,
                            high: UInt32(rule.high), low: UInt32(rule.low), scale: scale.factor,
                            divide: Step.divides ? 1 : 0, merged: merged ? 1 : 0, stream: 0, sums: nil, mask: nil)
    return wideGroups(kernel, tensors, groups: groups, args, stream: stream, measure: measure) { start in
        dareGroup(Lanes.self, b, f, out, start, left: 64, rule, scale, key, merged)
    }
}

/// Whole 64-element groups `groups` on a wide kernel with `args` (its inputs, output, keep
/// rule or mask, scale and output form); `redo(start)` redoes the group at element `start`
/// where the kernel flags it. With `measure`, also the `compareDelta` figures of the whole
/// comparison blocks from the first group (`groups.lowerBound` a multiple of 16): the
/// kernel's sums where it made the block as stored, `compareRange` for a block with a
/// redone group. Returns them and where they end (the caller compares the rest).
func wideGroups(_ kernel: WideDareKernel, _ tensors: DareTensors, groups: Range<Int>, _ args: ck_dare_args,
                stream: Bool, measure: Bool, redo redoGroup: (Int) -> Void) -> (DeltaComparison, end: Int) {
    let start = groups.lowerBound * 64
    guard !groups.isEmpty else { return (DeltaComparison(), start) }
    // Wide non-temporal stores need their own alignment (a result tensor's 64 bytes).
    let streams = stream && Int(bitPattern: tensors.output.data) & 63 == 0
    let blocks = measure ? groups.count * 64 / comparisonBlock : 0
    let merged = args.merged != 0
    precondition(!measure || start % comparisonBlock == 0, "measured groups start on a comparison block")
    return withUnsafeTemporaryAllocation(of: ck_delta_sums.self, capacity: Swift.max(1, blocks)) { sums in
        var args = args
        args.stream = streams ? 1 : 0
        args.sums = measure ? sums.baseAddress : nil
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: groups.count) { redo in
            kernel(&args, Int64(groups.lowerBound), Int64(groups.count), redo.baseAddress)
            for (offset, flag) in redo.enumerated() where flag != 0 { redoGroup((groups.lowerBound + offset) * 64) }
            var total = DeltaComparison()
            let groupsPerBlock = comparisonBlock / 64
            for block in 0..<blocks {
                let first = start + block * comparisonBlock
                let redone = redo[block * groupsPerBlock ..< (block + 1) * groupsPerBlock].contains { $0 != 0 }
                let figures = redone ? nil : DeltaComparison(sums[block])
                total.merge(figures.flatMap { $0.isFinite ? $0 : nil }
                            ?? compareRange(tensors.base, tensors.finetuned, tensors.output, first..<first + comparisonBlock, isMerged: merged))
            }
            return (total, start + blocks * comparisonBlock)
        }
    }
}

/// The per-chunk figures of a measured fused pass, summed in chunk order at the end (as
/// `compareDelta` sums them: the same figures on any thread count).
final class MeasuredChunks: @unchecked Sendable {
    let active: Bool
    /// One slot per chunk, each written by the thread that made the chunk.
    private let chunks: UnsafeMutableBufferPointer<DeltaComparison>

    init(count: Int, active: Bool) {
        self.active = active
        chunks = .allocate(capacity: active ? (count + Parallel.chunkSize - 1) / Parallel.chunkSize : 0)
        chunks.initialize(repeating: DeltaComparison())
    }

    deinit { chunks.deallocate() }

    /// The figures of chunk `range`.
    func record(_ range: Range<Int>, _ figures: DeltaComparison) {
        if active { chunks[range.lowerBound / Parallel.chunkSize] = figures }
    }

    /// Chunk `range` is written: the kernel's figures up to `end`, compared here after it.
    func finish(_ range: Range<Int>, _ figures: (DeltaComparison, end: Int), _ tensors: DareTensors, merged: Bool) {
        guard active else { return }
        var total = figures.0
        if figures.end < range.upperBound {
            total.merge(compareRange(tensors.base, tensors.finetuned, tensors.output, figures.end..<range.upperBound, isMerged: merged))
        }
        record(range, total)
    }

    var total: DeltaComparison? { active ? chunks.reduce(into: DeltaComparison()) { $0.merge($1) } : nil }
}

/// The inputs and output of one fused DARE pass.
struct DareTensors {
    let base: Tensor, finetuned: Tensor, output: Tensor
}

extension DeltaComparison {
    /// A whole block's figures from a wide kernel's lane sums.
    init(_ sums: ck_delta_sums) {
        func lanes<Lanes>(_ tuple: some Any) -> Lanes { withUnsafeBytes(of: tuple) { $0.loadUnaligned(as: Lanes.self) } }
        self.init(count: comparisonBlock, sumBefore: lanes(sums.sum_before), squaresBefore: lanes(sums.squares_before),
                  sumAfter: lanes(sums.sum_after), squaresAfter: lanes(sums.squares_after), error: lanes(sums.error),
                  nonZeroBefore: lanes(sums.nonzero_before), nonZeroAfter: lanes(sums.nonzero_after))
    }
}

/// The Philox words of whole 32-element groups `first ..< first + count` into `target`, on
/// the wide kernel of `path`; false (nothing written) on the portable path.
func widePhiloxWords(_ key: RandomKey, groups: Range<Int>, into target: UnsafeMutablePointer<UInt32>,
                     _ path: KernelPath = .active) -> Bool {
    switch path {
    case .portable: return false
    case .avx2: ck_philox_words_avx2(key.seed, key.nameHash, Int64(groups.lowerBound), Int64(groups.count), target)
    case .avx512: ck_philox_words_avx512(key.seed, key.nameHash, Int64(groups.lowerBound), Int64(groups.count), target)
    }
    return true
}
