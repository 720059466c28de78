/// Uniform floats and Bernoulli masks from Philox, chunked and threaded without
/// changing a single bit (see `Philox` for the stream layout).

/// F32 uniforms in [0, 1): the top 24 bits of each element's word times 2^-24.
public func uniform(_ shape: [Int], key: RandomKey) throws -> Tensor {
    let result = Tensor(uninitialized: shape, dtype: .f32)
    let target = result.data.assumingMemoryBound(to: Float.self)
    Parallel.forEachChunk(count: result.count) { range in
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: range.count)
        defer { words.deallocate() }
        Philox.words(range, key: key, into: words)
        for index in 0..<range.count {
            target[range.lowerBound + index] = Float(words[index] >> 8) * 0x1p-24
        }
    }
    return result
}

/// The 32-bit threshold of a keep probability: an element is kept when its word is
/// below it, so P(keep) = threshold / 2^32 (exact to 2^-32). `nil` means keep all.
func keepThreshold(_ keep: Double) throws -> UInt32?? {
    guard keep.isFinite, keep >= 0, keep <= 1 else {
        throw TensorError.invalid("bernoulli: keep probability must be in [0, 1], got \(keep)")
    }
    if keep >= 1 { return .some(nil) }
    return .some(UInt32(min(keep * 4_294_967_296, 4_294_967_295)))
}

/// BOOL mask with P(1) = `keep`, independently per element.
public func bernoulliMask(_ shape: [Int], keep: Double, key: RandomKey) throws -> Tensor {
    let threshold = try keepThreshold(keep)!
    let result = Tensor(uninitialized: shape, dtype: .bool)
    let target = result.data.assumingMemoryBound(to: UInt8.self)
    Parallel.forEachChunk(count: result.count) { range in
        guard let threshold else {
            for index in range { target[index] = 1 }
            return
        }
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: range.count)
        defer { words.deallocate() }
        Philox.words(range, key: key, into: words)
        for index in 0..<range.count {
            target[range.lowerBound + index] = words[index] < threshold ? 1 : 0
        }
    }
    return result
}
