import LopperCore
import LopperIO

/// One output tensor as a sparse delta stores it: its record and the safetensors
/// entries that hold its values and positions (name, tensor), smallest layout first.
struct SparseTensor {
    var record: SparseRecord
    var parts: [(String, Tensor)]
    var byteCount: Int { parts.reduce(0) { $0 + $1.1.byteCount } }
}

/// Chooses how a tensor is stored (Docs/sparse-format.md). The output is patched onto
/// `base + 0` rounded to the output dtype (what a dropped entry of a merged output is):
/// the positions where the output's bits differ from that are the ones to store.
/// A Bernoulli mask the method drew (from `MaskDrawLog`) addresses them by seed when
/// every differing position lies inside the regenerated mask: a check on the output
/// itself, so a plugin that inverts, mixes or ignores its mask simply falls back to
/// stored positions. Otherwise LEB128 gaps, a bitmap, or the dense tensor, the smallest.
enum SparseEncoder {
    /// What apply rebuilds the positions that are not stored from.
    static func baseline(_ base: Tensor, dtype: DType) throws -> Tensor {
        base.dtype == dtype ? try addingZero(base) : try add(base, 0, dtype: dtype)
    }

    static func dense(_ name: String, _ output: Tensor) -> SparseTensor {
        SparseTensor(record: SparseRecord(shape: output.shape, dtype: output.dtype, encoding: .dense, count: output.count,
                                          positionsChecksum: 0, valuesChecksum: SparseCodes.valuesChecksum(output)),
                     parts: [(name, output)])
    }

    /// `output` is the tensor `--output merged` writes; `base` the base tensor it is
    /// stored against (nil: stored dense); `draws` the masks drawn while making it.
    static func encode(_ name: String, output: Tensor, base: Tensor?, draws: [MaskDraw]) throws -> SparseTensor {
        guard let base, base.shape == output.shape, base.dtype.isComputable, output.dtype.isComputable, output.count > 0 else {
            return dense(name, output)
        }
        let changed = try bitsDiffer(output, try baseline(base, dtype: output.dtype))
        let identity = SparseRecord.BaseIdentity(dtype: base.dtype, shape: base.shape, sampleHash: SparseCodes.sampleHash(base))
        func stored(_ encoding: SparseRecord.Encoding, _ mask: Tensor, _ record: SparseRecord.Mask?, positions: [UInt8]) throws -> SparseTensor {
            let values = try maskedGather(output, where: mask)
            var parts: [(String, Tensor)] = values.count > 0 ? [(name + SparseFormat.valuesSuffix, values)] : []
            if !positions.isEmpty {
                parts.append((name + (encoding == .bitmap ? SparseFormat.bitmapSuffix : SparseFormat.indicesSuffix), try bytesTensor(positions)))
            }
            let sparse = SparseRecord(shape: output.shape, dtype: output.dtype, encoding: encoding, count: values.count,
                                      positionsChecksum: SparseCodes.positionsChecksum(mask),
                                      valuesChecksum: SparseCodes.valuesChecksum(values), mask: record, base: identity)
            return SparseTensor(record: sparse, parts: parts)
        }
        let changedCount = maskCount(changed), valueBytes = changedCount * output.dtype.byteSize
        var best = dense(name, output)
        for candidate in candidates(draws, shape: output.shape) {
            let mask = try SparseCodes.mask(candidate, shape: output.shape)
            guard try maskIsInside(changed, mask) else { continue }
            let seeded = try stored(.philox, mask, candidate, positions: [])
            if seeded.byteCount < best.byteCount { best = seeded }
            break
        }
        // Stored positions cost at least their values: skip coding them when seeded is no larger.
        guard best.byteCount > valueBytes else { return best }
        let gaps = SparseCodes.gaps(changed), bitmapBytes = (output.count + 7) / 8
        if valueBytes + min(gaps.count, bitmapBytes) < best.byteCount {
            let positions = gaps.count <= bitmapBytes ? gaps : SparseCodes.bitmap(changed)
            best = try stored(gaps.count <= bitmapBytes ? .indices : .bitmap, changed, nil, positions: positions)
        }
        return best
    }

    /// The masks a draw can be: per element, or per row or column of a matrix.
    static func candidates(_ draws: [MaskDraw], shape: [Int]) -> [SparseRecord.Mask] {
        let count = shape.reduce(1, *)
        var result: [SparseRecord.Mask] = []
        for draw in draws {
            var maps: [SparseRecord.MaskMap] = []
            if draw.count == count { maps.append(.element) }
            if shape.count == 2, draw.count == shape[0], shape[1] > 1 { maps.append(.rows) }
            if shape.count == 2, draw.count == shape[1], shape[0] > 1 { maps.append(.cols) }
            for map in maps {
                result.append(SparseRecord.Mask(threshold: draw.threshold, seed: draw.key.seed, streamHash: draw.key.nameHash,
                                                length: draw.count, map: map))
            }
        }
        return result
    }

    static func bytesTensor(_ bytes: [UInt8]) throws -> Tensor {
        let tensor = try Tensor(uninitialized: [bytes.count], dtype: .u8)
        bytes.withUnsafeBytes { tensor.data.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return tensor
    }
}
