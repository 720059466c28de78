import LopperCore
import LopperIO

/// `lopper apply` of a sparse delta (Docs/sparse-format.md): each tensor is its base
/// tensor plus 0, rounded to the recorded dtype, with the stored values written at the
/// stored or regenerated positions: the merged output of the prune run, byte for byte.
/// The base must be the one the delta was made against (names, dtypes and shapes are
/// checked before anything is written; each tensor's sample hash as it is read), and
/// positions and values must match their checksums; otherwise nothing is written.
extension Applier {
    func runSparse(base: Checkpoint, delta: Checkpoint, showProgress: Bool) throws -> (added: Int, fromDelta: Int, copied: Int) {
        let records = try SparseFormat.records(of: delta)
        guard !records.isEmpty else { throw PruneError("\(deltaPath): the sparse delta records no tensors") }
        let byName = Dictionary(records, uniquingKeysWith: { first, _ in first })
        for (name, record) in records { try check(name, record, base: base, delta: delta) }
        let entries = records.map { name, record in
            SafetensorsWriter.Entry(name: name, dtype: dtype.flatMap { record.dtype.isComputable ? $0 : nil } ?? record.dtype, shape: record.shape)
        }
        let (writer, progress) = try makeWriter(entries, delta: delta, showProgress: showProgress, dropping: "lopper.sparse.")
        var counts = (added: 0, fromDelta: 0, copied: 0)
        try writer.writeAll(copying: delta, progress: { done, bytes, name in
            progress?.update(tensors: done, bytes: bytes, current: name)
        }, tensor: { entry in
            let record = byName[entry.name]!
            let tensor: Tensor
            if record.encoding == .dense { tensor = try values(entry.name, record, delta); counts.fromDelta += 1 }
            else { tensor = try patched(entry.name, record, base: base, delta: delta); counts.added += 1 }
            return tensor.dtype == entry.dtype ? tensor : try tensor.converted(to: entry.dtype)
        }, written: { entry in
            base.releasePages(of: entry.name)
            for suffix in ["", SparseFormat.valuesSuffix, SparseFormat.indicesSuffix, SparseFormat.bitmapSuffix] {
                delta.releasePages(of: entry.name + suffix)
            }
        })
        progress?.finish()
        return counts
    }

    /// Everything the headers can tell: the base has the tensor as recorded, and the
    /// delta's parts have the recorded dtypes and sizes.
    private func check(_ name: String, _ record: SparseRecord, base: Checkpoint, delta: Checkpoint) throws {
        func part(_ suffix: String, _ dtype: DType, _ count: Int) throws {
            let info = delta.info(name + suffix)
            if count == 0 && info == nil { return }
            guard let info else { throw PruneError("\(deltaPath): tensor \"\(name + suffix)\" is missing; the sparse delta is incomplete") }
            guard info.dtype == dtype, info.count == count else {
                throw PruneError("\(deltaPath): tensor \"\(name + suffix)\" is \(info.shape.shapeText) \(info.dtype.name), the record says [\(count)] \(dtype.name)")
            }
        }
        if record.encoding == .dense {
            guard let info = delta.info(name), info.dtype == record.dtype, info.shape == record.shape else {
                throw PruneError("\(deltaPath): tensor \"\(name)\" is missing or not \(record.shape.shapeText) \(record.dtype.name) as its record says")
            }
            return
        }
        guard let identity = record.base, let info = base.info(name) else {
            throw PruneError("\(basePath) is not the base of \(deltaPath): it has no tensor \"\(name)\"")
        }
        guard info.dtype == identity.dtype, info.shape == identity.shape, identity.shape == record.shape else {
            throw PruneError("\(basePath) is not the base of \(deltaPath): tensor \"\(name)\" is \(info.shape.shapeText) \(info.dtype.name), the delta was made against \(identity.shape.shapeText) \(identity.dtype.name)")
        }
        try part(SparseFormat.valuesSuffix, record.dtype, record.count)
        let elements = record.shape.reduce(1, *)
        switch record.encoding {
        case .bitmap: try part(SparseFormat.bitmapSuffix, .u8, (elements + 7) / 8)
        case .indices:
            if record.count > 0, delta.info(name + SparseFormat.indicesSuffix)?.dtype != .u8 {
                throw PruneError("\(deltaPath): tensor \"\(name + SparseFormat.indicesSuffix)\" is missing or not U8; the sparse delta is incomplete")
            }
        default: break
        }
    }

    /// Dense values, checked against their checksum.
    private func values(_ name: String, _ record: SparseRecord, _ delta: Checkpoint) throws -> Tensor {
        let part = record.valuesName(name)
        guard record.count > 0 else { return try Tensor(zeros: [0], dtype: record.dtype) }
        let values = try delta.tensor(part)
        guard SparseCodes.valuesChecksum(values) == record.valuesChecksum else {
            throw PruneError("\(deltaPath): tensor \"\(part)\": the values do not match their checksum (a corrupted file); refusing to apply")
        }
        return values
    }

    /// The base tensor with the delta's values at its positions.
    private func patched(_ name: String, _ record: SparseRecord, base: Checkpoint, delta: Checkpoint) throws -> Tensor {
        let baseTensor = try base.tensor(name)
        guard SparseCodes.sampleHash(baseTensor) == record.base?.sampleHash else {
            throw PruneError("\(basePath) is not the base of \(deltaPath): tensor \"\(name)\" has other values than the one the delta was made against")
        }
        let mask: Tensor
        let elements = record.shape.reduce(1, *)
        do {
            switch record.encoding {
            case .philox: mask = try SparseCodes.mask(record.mask!, shape: record.shape)
            case .indices:
                if record.count == 0 { mask = try Tensor(zeros: [elements], dtype: .bool); break }
                let codes = try delta.tensor(name + SparseFormat.indicesSuffix)
                mask = try SparseCodes.mask(gaps: UnsafeRawBufferPointer(start: codes.data, count: codes.byteCount), count: elements, expected: record.count)
            case .bitmap:
                let bits = try delta.tensor(name + SparseFormat.bitmapSuffix)
                mask = try SparseCodes.mask(bitmap: UnsafeRawBufferPointer(start: bits.data, count: bits.byteCount), count: elements)
            case .dense: fatalError("dense records are not patched")
            }
        } catch let error as PruneError { throw error } catch {
            throw PruneError("\(deltaPath): tensor \"\(name)\": \(error)")
        }
        // A count that differs shows in the scatter below (it checks the values' count), or here when none are stored.
        guard record.count > 0 || maskCount(mask) == 0, SparseCodes.positionsChecksum(mask) == record.positionsChecksum else {
            let cause = record.encoding == .philox
                ? "the positions regenerated from the seed do not match the recorded checksum (another Lopper mask version, or a corrupted file)"
                : "the stored positions do not match their checksum (a corrupted file)"
            throw PruneError("\(deltaPath): tensor \"\(name)\": \(cause); refusing to apply")
        }
        let output = try SparseEncoder.baseline(baseTensor, dtype: record.dtype)
        guard record.count > 0 else { return output }
        do { try maskedScatter(try values(name, record, delta), where: mask, into: output) } catch let error as TensorError {
            throw PruneError("\(deltaPath): tensor \"\(name)\": the positions do not match the record (\(error)); refusing to apply")
        }
        return output
    }
}
