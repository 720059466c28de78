/// Uniform floats and Bernoulli masks from Philox, chunked and threaded without
/// changing a single bit (see `Philox` for the stream layout).

/// F32 uniforms in [0, 1): the top 24 bits of each element's 32-bit draw times 2^-24.
public func uniform(_ shape: [Int], key: RandomKey) throws -> Tensor {
    let result = try Tensor(uninitialized: shape, dtype: .f32)
    let target = result.data.assumingMemoryBound(to: Float.self)
    Parallel.forEachChunk(count: result.count) { range in
        // The words of a block (on the wide Philox kernels where there are some), then their floats.
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: kernelBlock) { buffer in
            let words = buffer.baseAddress!, raw = UnsafeRawPointer(words)
            var start = range.lowerBound
            while start < range.upperBound {
                let length = min(kernelBlock, range.upperBound - start)
                Philox.words(start..<start + length, key: key, into: words)
                let out = UnsafeMutableRawPointer(target + start)
                var index = 0
                while index &+ 16 <= length {
                    out.storeBytes(of: unitFloats(raw.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<UInt32>.self)),
                                   toByteOffset: index &* 4, as: SIMD16<Float>.self)
                    index &+= 16
                }
                for tail in index..<length { target[start + tail] = Float(words[tail] >> 8) * 0x1p-24 }
                start += length
            }
        }
    }
    return result
}

/// `(word >> 8) * 2^-24` in lanes. The stdlib's integer-to-float SIMD conversion is a
/// generic lane loop that stays a call here, so the 24-bit value is built from float bits
/// instead: the low 23 bits as the mantissa of 2^23 (minus 2^23), bit 23 as 2^23 or 0.
/// Both parts and their sum are exact, as `Float(word >> 8)` is.
@inline(__always)
private func unitFloats(_ words: SIMD16<UInt32>) -> SIMD16<Float> {
    let value = words &>> 8
    let low = floatFromBits((value & 0x7F_FFFF) | 0x4B00_0000) - 0x1p23
    let top = floatFromBits((0 &- (value &>> 23)) & 0x4B00_0000)
    return (low + top) * 0x1p-24
}

/// BOOL mask with P(1) = `keep`, independently per element, resolved to 2^-32 (see
/// `KeepRule` for how 16-bit draws keep that resolution).
public func bernoulliMask(_ shape: [Int], keep: Double, key: RandomKey) throws -> Tensor {
    let rule = try KeepRule(keep)
    let result = try Tensor(uninitialized: shape, dtype: .bool)
    MaskDrawLog.record(keep: keep, key: key, count: result.count)
    let target = result.data.assumingMemoryBound(to: UInt8.self)
    Parallel.forEachChunk(count: result.count) { range in rule.fill(range, key: key, into: target) }
    return result
}
