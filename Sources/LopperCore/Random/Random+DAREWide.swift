import CKernels

/// A wide kernel of the fused DARE pass (Sources/CKernels/DareKernels.c) for one dtype.
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
func dareWide<Lanes: FloatLanes, Step: RescaleStep>(_: Lanes.Type, _ kernel: WideDareKernel, _ b: UnsafeRawPointer,
                                                    _ f: UnsafeRawPointer, _ out: UnsafeMutableRawPointer,
                                                    groups: Range<Int>, _ rule: KeepRule, _ scale: Step, _ key: RandomKey,
                                                    merged: Bool, stream: Bool) {
    guard !groups.isEmpty else { return }
    // Wide non-temporal stores need their own alignment (a result tensor's 64 bytes).
    let streams = stream && Int(bitPattern: out) & 63 == 0
    var args = ck_dare_args(base: b, finetuned: f, output: out, seed: key.seed, name_hash: key.nameHash,
                            high: UInt32(rule.high), low: UInt32(rule.low), scale: scale.factor,
                            divide: Step.divides ? 1 : 0, merged: merged ? 1 : 0, stream: streams ? 1 : 0)
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: groups.count) { redo in
        kernel(&args, Int64(groups.lowerBound), Int64(groups.count), redo.baseAddress)
        for (offset, flag) in redo.enumerated() where flag != 0 {
            dareGroup(Lanes.self, b, f, out, (groups.lowerBound + offset) * 64, left: 64, rule, scale, key, merged)
        }
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
