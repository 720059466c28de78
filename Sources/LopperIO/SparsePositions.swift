import LopperCore

/// The position and checksum codes of the sparse format (Docs/sparse-format.md): sums of
/// SplitMix64 finalisers, which any language computes with wrapping 64-bit integers and
/// which do not depend on the order or chunking of the sum.
public enum SparseCodes {
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    public static func mix64(_ x: UInt64) -> UInt64 {
        var z = x &+ golden
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Sum of `mix64(i)` over the set elements `i` of BOOL `mask`.
    public static func positionsChecksum(_ mask: Tensor) -> UInt64 {
        let bits = UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self))
        return chunkedSum(mask.count) { range in
            var sum: UInt64 = 0
            forEachSet(bits, in: range) { sum &+= mix64(UInt64($0)) }
            return sum
        }
    }

    /// Sum of `mix64(word_j + j * golden)` over the values' bytes as little-endian 64-bit
    /// words `j` (the last one zero-padded).
    public static func valuesChecksum(_ values: Tensor) -> UInt64 {
        let raw = UnsafeRawPointer(values.data), bytes = values.byteCount, words = (bytes + 7) / 8
        return chunkedSum(words) { range in
            var sum: UInt64 = 0
            for j in range {
                var word: UInt64 = 0
                if j * 8 + 8 <= bytes { word = raw.loadUnaligned(fromByteOffset: j * 8, as: UInt64.self) }
                else { withUnsafeMutableBytes(of: &word) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw + j * 8, count: bytes - j * 8)) } }
                sum &+= mix64(UInt64(littleEndian: word) &+ UInt64(j) &* golden)
            }
            return sum
        }
    }

    /// A cheap identity of a tensor's bytes: up to 4096 evenly spaced little-endian 64-bit
    /// words `j` (`j = k * words / 4096`), summed as `mix64(word + j * golden)`, plus
    /// `mix64(byte count)`. The tail beyond the last whole word is not sampled.
    public static func sampleHash(_ tensor: Tensor) -> UInt64 {
        let words = tensor.byteCount / 8, samples = min(words, 4096)
        let raw = UnsafeRawPointer(tensor.data)
        var sum = mix64(UInt64(tensor.byteCount))
        for k in 0..<samples {
            let j = samples == words ? k : Int((UInt64(k) * UInt64(words)) / UInt64(samples))
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: j * 8, as: UInt64.self))
            sum &+= mix64(word &+ UInt64(j) &* golden)
        }
        return sum
    }

    private static func chunkedSum(_ count: Int, _ body: (Range<Int>) -> UInt64) -> UInt64 {
        let chunks = (count + Parallel.chunkSize - 1) / Parallel.chunkSize
        guard chunks > 0 else { return 0 }
        let sums = UnsafeMutablePointer<UInt64>.allocate(capacity: chunks)
        defer { sums.deallocate() }
        Parallel.forEachChunk(count: count) { range in sums[range.lowerBound / Parallel.chunkSize] = body(range) }
        return (0..<chunks).reduce(0) { $0 &+ sums[$1] }
    }

    // MARK: - Positions

    /// LEB128 gaps of the set elements of BOOL `mask`: `i0`, then `i(k) - i(k-1) - 1`.
    public static func gaps(_ mask: Tensor) -> [UInt8] {
        let bits = UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self))
        var bytes: [UInt8] = []
        var previous = -1
        forEachSet(bits, in: 0..<mask.count) { index in
            var gap = UInt64(index - previous - 1)
            while gap >= 0x80 { bytes.append(UInt8(gap & 0x7F) | 0x80); gap >>= 7 }
            bytes.append(UInt8(gap))
            previous = index
        }
        return bytes
    }

    /// The BOOL mask of `count` elements that `gaps` codes; throws on a malformed code.
    public static func mask(gaps bytes: UnsafeRawBufferPointer, count: Int, expected: Int) throws -> Tensor {
        let mask = try Tensor(zeros: [count], dtype: .bool)
        let bits = mask.data.assumingMemoryBound(to: UInt8.self)
        var position = -1, gap: UInt64 = 0, shift: UInt64 = 0, found = 0
        for byte in bytes {
            guard shift < 63 else { throw SparseRecordError("an index gap is longer than 9 bytes") }
            gap |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 != 0 { shift += 7; continue }
            guard gap < UInt64(count), position + 1 + Int(gap) < count else { throw SparseRecordError("an index lies beyond the tensor's \(count) elements") }
            position += 1 + Int(gap)
            bits[position] = 1
            found += 1
            gap = 0; shift = 0
        }
        guard shift == 0 else { throw SparseRecordError("the index code ends inside a gap") }
        guard found == expected else { throw SparseRecordError("the index code holds \(found) positions, the record \(expected)") }
        return mask
    }

    /// Bit `i % 8` of byte `i / 8` set for each set element `i` of BOOL `mask`.
    public static func bitmap(_ mask: Tensor) -> [UInt8] {
        let bits = UnsafePointer(mask.data.assumingMemoryBound(to: UInt8.self))
        var bytes = [UInt8](repeating: 0, count: (mask.count + 7) / 8)
        bytes.withUnsafeMutableBufferPointer { target in
            forEachSet(bits, in: 0..<mask.count) { target[$0 >> 3] |= 1 << UInt8($0 & 7) }
        }
        return bytes
    }

    public static func mask(bitmap bytes: UnsafeRawBufferPointer, count: Int) throws -> Tensor {
        guard bytes.count == (count + 7) / 8 else { throw SparseRecordError("the bitmap has \(bytes.count) bytes, \((count + 7) / 8) expected") }
        let mask = try Tensor(uninitialized: [count], dtype: .bool)
        let bits = mask.data.assumingMemoryBound(to: UInt8.self)
        Parallel.forEachChunk(count: count) { range in
            for index in range { bits[index] = (bytes[index >> 3] >> UInt8(index & 7)) & 1 }
        }
        return mask
    }

    /// The element mask of a `philox` record: the Bernoulli mask of `mask.length` draws,
    /// spread over `shape` as `mask.map` says.
    public static func mask(_ mask: SparseRecord.Mask, shape: [Int]) throws -> Tensor {
        let count = try Tensor.elementCount(shape)
        let key = RandomKey(seed: mask.seed, nameHash: mask.streamHash)
        let drawn = try bernoulliMask([mask.length], keep: try bernoulliKeep(threshold: mask.threshold), key: key)
        let columns = shape.count == 2 ? shape[1] : 1, rows = count / max(columns, 1)
        switch mask.map {
        case .element:
            guard mask.length == count else { throw SparseRecordError("the mask has \(mask.length) draws for \(count) elements") }
            return try drawn.reshaped([count])
        case .rows, .cols:
            guard shape.count == 2, mask.length == (mask.map == .rows ? rows : columns) else {
                throw SparseRecordError("a \(mask.map.rawValue) mask of \(mask.length) draws does not fit shape \(shape.shapeText)")
            }
            let result = try Tensor(uninitialized: [count], dtype: .bool)
            let from = UnsafePointer(drawn.data.assumingMemoryBound(to: UInt8.self)), to = result.data.assumingMemoryBound(to: UInt8.self)
            Parallel.forEach(rows) { row in
                if mask.map == .rows { (to + row * columns).update(repeating: from[row], count: columns) }
                else { (to + row * columns).update(from: from, count: columns) }
            }
            return result
        }
    }
}
