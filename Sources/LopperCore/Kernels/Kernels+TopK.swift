import Synchronization

// Top-k selection on values (callers pass abs(x) to select by magnitude).
//
// Tie rule, shared by every function here: exactly k elements are kept; among equal
// values the one with the lower flat index (row-major position; within a row or group
// for the per-row and N:M forms) wins; NaN counts as smaller than every number, and
// -0 equals +0. So with k = 2 and values [1, 3, 1, 1] the kept elements are 3 and the
// first 1 (index 0).

/// The k-th largest element (1-based: k = 1 is the maximum). Linear time, never a sort:
/// one pass with a sampled bracket (`bracketSelectKey`, histograms where it misses), introselect for small tensors. NaN only comes back when fewer
/// than k elements are numbers.
public func kthLargest(_ a: Tensor, _ k: Int) throws -> Float {
    try requireComputable("kthLargest", a.dtype)
    guard k >= 1 && k <= a.count else {
        throw TensorError.invalid("kthLargest: k = \(k) is outside 1...\(a.count) for a tensor of shape \(a.shape.shapeText)")
    }
    return keyValue(try thresholdKey(a, k))
}

/// BOOL mask with exactly k ones on the k largest elements (ties: lower index first).
public func topKMask(_ a: Tensor, _ k: Int) throws -> Tensor {
    try requireComputable("topKMask", a.dtype)
    guard k >= 0 && k <= a.count else {
        throw TensorError.invalid("topKMask: k = \(k) is outside 0...\(a.count) for a tensor of shape \(a.shape.shapeText)")
    }
    guard k > 0 else { return try Tensor(zeros: a.shape, dtype: .bool) }
    let bracketed = a.count >= bracketSelectMinimum
    if bracketed, let mask = try bracketTopKMask(a, k) { return mask }
    // Where the bracket missed, its pass is not run again for the threshold.
    return try maskAtThreshold(a, thresholdKey(a, k, bracket: !bracketed)) { above, _ in k - above }.mask
}

/// BOOL mask of the keys above `threshold` and, in index order, the first
/// `tiesToKeep(above, equal)` keys equal to it (given the counts of both); with the counts.
func maskAtThreshold(_ a: Tensor, _ threshold: UInt32, tiesToKeep: (_ above: Int, _ equal: Int) -> Int) throws
    -> (mask: Tensor, above: Int, equal: Int) {
    let result = try Tensor(zeros: a.shape, dtype: .bool)
    let base = UnsafeRawPointer(a.data), dtype = a.dtype, count = a.count, chunk = Parallel.chunkSize
    let chunks = (count + chunk - 1) / chunk
    let output = result.data.assumingMemoryBound(to: UInt8.self)
    // One pass writes 1 above the threshold and a provisional 2 on keys equal to it, and
    // counts both per chunk. Then the first ties-to-keep equal keys in index order become 1,
    // the others 0: only chunks that hold equal keys are read again, and only their bytes.
    var above = [Int](repeating: 0, count: chunks), equal = [Int](repeating: 0, count: chunks)
    above.withUnsafeMutableBufferPointer { above in
        equal.withUnsafeMutableBufferPointer { equal in
            let wide = WideSelect(dtype)
            Parallel.forEachChunk(count: count, chunk: chunk) { range in
                if let wide {
                    (above[range.lowerBound / chunk], equal[range.lowerBound / chunk]) =
                        wide.maskAtThreshold(base, range, threshold: threshold, into: output)
                    return
                }
                var greater = 0, same = 0
                forEachKeyBlock(base, dtype, range) { keys, start, length in
                    let target = output + start
                    for index in 0..<length {
                        let isAbove = keys[index] > threshold, isEqual = keys[index] == threshold
                        greater &+= isAbove ? 1 : 0
                        same &+= isEqual ? 1 : 0
                        target[index] = isAbove ? 1 : isEqual ? 2 : 0
                    }
                }
                above[range.lowerBound / chunk] = greater
                equal[range.lowerBound / chunk] = same
            }
        }
    }
    let totalAbove = above.reduce(0, +), totalEqual = equal.reduce(0, +)
    var tiesLeft = Swift.max(0, Swift.min(totalEqual, tiesToKeep(totalAbove, totalEqual)))
    var quota = [Int](repeating: 0, count: chunks)
    for index in 0..<chunks {
        quota[index] = Swift.min(tiesLeft, equal[index])
        tiesLeft -= quota[index]
    }
    quota.withUnsafeBufferPointer { quota in
        equal.withUnsafeBufferPointer { equal in
            Parallel.forEachChunk(count: count, chunk: chunk) { range in
                guard equal[range.lowerBound / chunk] > 0 else { return }
                settleTies(output, range, keep: quota[range.lowerBound / chunk])
            }
        }
    }
    return (result, totalAbove, totalEqual)
}

/// Turns the provisional 2s of mask bytes `range` (keys equal to the threshold) into 1 for
/// the first `keep` of them in index order, 0 for the others. Words without a 2 are skipped.
private func settleTies(_ output: UnsafeMutablePointer<UInt8>, _ range: Range<Int>, keep: Int) {
    var kept = 0, index = range.lowerBound
    func settle(_ index: Int) {
        guard output[index] == 2 else { return }
        output[index] = kept < keep ? 1 : 0
        kept += 1
    }
    while index + 8 <= range.upperBound {
        if UnsafeRawPointer(output + index).loadUnaligned(as: UInt64.self) & 0x0202_0202_0202_0202 != 0 {
            for offset in 0..<8 { settle(index + offset) }
        }
        index += 8
    }
    while index < range.upperBound { settle(index); index += 1 }
}

/// BOOL mask with exactly k ones in each row of a 2-D tensor (a 1-D tensor is one row).
public func topKMaskPerRow(_ a: Tensor, _ k: Int) throws -> Tensor {
    try rowTopKMask(a, k).mask
}

/// Rows at least this long are selected by a sampled bracket on the wide kernels, one run
/// of sixteen keys sampled per `rowSampleStride` elements.
let rowBracketMinimum = 1024, rowSampleStride = 256

/// `topKMaskPerRow`, with the count of rows whose bracket (`deviations` standard deviations
/// of a sample rank wide; tests narrow it) missed and that were selected another way.
func rowTopKMask(_ a: Tensor, _ k: Int, deviations: Double = 2.5) throws -> (mask: Tensor, fallbacks: Int) {
    try requireComputable("topKMaskPerRow", a.dtype)
    guard let (rows, cols) = a.matrixShape else {
        throw TensorError.invalid("topKMaskPerRow: expects a 1-D or 2-D tensor, got shape \(a.shape.shapeText)")
    }
    guard k >= 0 && k <= cols else {
        throw TensorError.invalid("topKMaskPerRow: k = \(k) is outside 0...\(cols) for rows of \(cols) elements")
    }
    guard k > 0 && rows > 0 else { return (try Tensor(zeros: a.shape, dtype: .bool), 0) }
    // Every byte is written below, by one path or the other.
    let result = try Tensor(uninitialized: a.shape, dtype: .bool)
    let base = UnsafeRawPointer(a.data), dtype = a.dtype, output = result.data.assumingMemoryBound(to: UInt8.self)
    let bracket = cols >= rowBracketMinimum ? WideSelect(dtype) : nil
    let rowsPerTask = Swift.max(1, Parallel.chunkSize / cols), fallbacks = Atomic<Int>(0)
    Parallel.forEachChunk(count: rows, chunk: rowsPerTask) { range in
        let buffer = UnsafeMutablePointer<UInt32>.allocate(capacity: 5 * cols)
        defer { buffer.deallocate() }
        for row in range {
            let target = output + row * cols
            if let bracket {
                let data = base + row * cols * dtype.byteSize, next = row + 1 < rows ? data + cols * dtype.byteSize : nil
                if bracket.rowTopKMask(data, cols: cols, k: k, runs: cols / rowSampleStride, deviations: deviations,
                                       next: next, scratch: buffer, into: target) { continue }
                fallbacks.add(1, ordering: .relaxed)
            }
            keepLargest(base, dtype, start: row * cols, length: cols, k: k, buffer: buffer, into: target)
        }
    }
    return (result, fallbacks.load(ordering: .relaxed))
}

/// N:M structured mask along rows: in each group of m consecutive elements of the last
/// dimension, the n largest are kept (ties: lower index in the group first). The last
/// dimension must be a multiple of m.
public func nmMask(_ a: Tensor, n: Int, m: Int) throws -> Tensor {
    try requireComputable("nmMask", a.dtype)
    guard m >= 1, n >= 0, n <= m else {
        throw TensorError.invalid("nmMask: needs 0 <= n <= m and m >= 1, got n = \(n), m = \(m)")
    }
    guard let cols = a.shape.last else { throw TensorError.invalid("nmMask: expects a tensor with at least one dimension") }
    guard cols % m == 0 else {
        throw TensorError.invalid("nmMask: rows of \(cols) elements (shape \(a.shape.shapeText)) do not split into groups of m = \(m)")
    }
    let result = try Tensor(zeros: a.shape, dtype: .bool)
    guard n > 0 else { return result }
    let base = UnsafeRawPointer(a.data), dtype = a.dtype, output = result.data.assumingMemoryBound(to: UInt8.self)
    let groups = a.count / m
    let groupsPerTask = Swift.max(1, Parallel.chunkSize / m)
    Parallel.forEachChunk(count: groups, chunk: groupsPerTask) { range in
        if m > 32 {
            let buffer = UnsafeMutablePointer<UInt32>.allocate(capacity: 3 * m)
            defer { buffer.deallocate() }
            for group in range {
                keepLargest(base, dtype, start: group * m, length: m, k: n, buffer: buffer, into: output + group * m)
            }
            return
        }
        // Small groups: keys for a run of whole groups, then rank inside each group by
        // counting the members that beat it (greater, or equal and earlier).
        let groupsPerBlock = kernelBlock / m
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: groupsPerBlock * m) { keys in
            var group = range.lowerBound
            while group < range.upperBound {
                let count = Swift.min(groupsPerBlock, range.upperBound - group)
                computeKeys(base, dtype, group * m, count * m, into: keys.baseAddress!)
                for member in 0..<count {
                    let first = keys.baseAddress! + member * m, target = output + (group + member) * m
                    for j in 0..<m {
                        var beaten = 0
                        for i in 0..<m {
                            beaten &+= (first[i] > first[j] || (first[i] == first[j] && i < j)) ? 1 : 0
                        }
                        target[j] = beaten < n ? 1 : 0
                    }
                }
                group += count
            }
        }
    }
    return result
}

// MARK: - Shared pieces

/// The key of the k-th largest element: by bracket (unless `bracket` is false, or where its
/// sample misled: by histograms) over a large tensor, by introselect on a copy of the keys
/// of a small one.
private func thresholdKey(_ a: Tensor, _ k: Int, bracket: Bool = true) throws -> UInt32 {
    let count = a.count
    if count >= bracketSelectMinimum {
        return (bracket ? bracketSelectKey(a, rank: count - k) : nil) ?? histogramSelectKey(a, rank: count - k)
    }
    let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
    defer { keys.deallocate() }
    computeKeys(UnsafeRawPointer(a.data), a.dtype, 0, count, into: keys)
    return selectKey(keys, count: count, rank: count - k)
}

/// Calls `body(keys, start, length)` for blocks of `range` with their order keys.
@inline(__always)
func forEachKeyBlock(_ base: UnsafeRawPointer, _ dtype: DType, _ range: Range<Int>,
                             _ body: (UnsafeMutablePointer<UInt32>, Int, Int) -> Void) {
    withUnsafeTemporaryAllocation(of: UInt32.self, capacity: kernelBlock) { keys in
        var start = range.lowerBound
        while start < range.upperBound {
            let length = Swift.min(kernelBlock, range.upperBound - start)
            computeKeys(base, dtype, start, length, into: keys.baseAddress!)
            body(keys.baseAddress!, start, length)
            start += length
        }
    }
}

/// Mask bytes for `keys`: 1 above the threshold, 1 for the first `tiesToKeep` equal keys
/// counted by `ties` across calls, else 0.
@inline(__always)
private func writeMask(_ keys: UnsafePointer<UInt32>, _ length: Int, threshold: UInt32, ties: inout Int, tiesToKeep: Int,
                       into output: UnsafeMutablePointer<UInt8>) {
    for index in 0..<length {
        let key = keys[index]
        var keep = key > threshold
        if key == threshold {
            keep = ties < tiesToKeep
            ties += 1
        }
        output[index] = keep ? 1 : 0
    }
}

/// Exactly k ones in `output[0..<length]` on the largest of elements `start ..< start + length`.
/// `buffer` holds 3 * length keys.
private func keepLargest(_ base: UnsafeRawPointer, _ dtype: DType, start: Int, length: Int, k: Int,
                         buffer: UnsafeMutablePointer<UInt32>, into output: UnsafeMutablePointer<UInt8>) {
    let keys = buffer, work = buffer + length, wide = WideSelect(dtype)
    computeKeys(base, dtype, start, length, into: keys)
    if let wide {
        // The mask comes from the values themselves: the select may reorder the whole buffer.
        let threshold = wide.selectKey(keys, count: length, rank: length - k, scratch: work)
        let above = wide.maskAtThreshold(base, start..<start + length, threshold: threshold, into: output - start).above
        settleTies(output, 0..<length, keep: k - above)
        return
    }
    // The mask reads the keys again: the select reorders a copy.
    work.update(from: keys, count: length)
    let threshold = selectKey(work, count: length, rank: length - k)
    var above = 0
    for index in 0..<length { above &+= keys[index] > threshold ? 1 : 0 }
    var ties = 0
    writeMask(keys, length, threshold: threshold, ties: &ties, tiesToKeep: k - above, into: output)
}
