import Foundation
import LopperCore
import LopperIO

/// `lopper apply`: adds a delta checkpoint (`lopper prune --output delta`) back onto a
/// base, streaming tensor by tensor. Tensors of the delta that the base lacks are taken
/// as they are (prune writes those as fine-tuned values); tensors only in the base are
/// copied. The output has the base's layout and carries the delta's run metadata.
public struct Applier {
    public var basePath: String
    public var deltaPath: String
    public var outputPath: String
    public var dtype: DType?
    public var shardSize: Int = ShardedWriter.defaultShardBytes
    public var overwrite = false

    public init(basePath: String, deltaPath: String, outputPath: String) {
        self.basePath = basePath; self.deltaPath = deltaPath; self.outputPath = outputPath
    }

    /// Writes the output; returns how many tensors were added, taken from the delta and copied.
    @discardableResult
    /// A progress bar appears on stderr when it is a terminal and `showProgress` is set.
    public func run(showProgress: Bool = false) throws -> (added: Int, fromDelta: Int, copied: Int) {
        let base = try Checkpoint(path: basePath), delta = try Checkpoint(path: deltaPath)
        guard !delta.names.isEmpty else { throw PruneError("\(deltaPath): the delta holds no tensors") }
        if SparseFormat.isSparse(delta) {
            return try runSparse(base: base, delta: delta, showProgress: showProgress)
        }
        let names = base.names + delta.names.filter { !base.contains($0) }
        var entries: [SafetensorsWriter.Entry] = []
        for name in names {
            let info = base.info(name) ?? delta.info(name)!
            if let other = delta.info(name), base.contains(name), other.shape != info.shape {
                throw PruneError("tensor \"\(name)\": shape \(other.shape.shapeText) in \(deltaPath) vs \(info.shape.shapeText) in \(basePath)")
            }
            let outputDType = dtype.flatMap { info.dtype.isComputable ? $0 : nil } ?? info.dtype
            entries.append(.init(name: name, dtype: outputDType, shape: info.shape))
        }
        let (writer, progress) = try makeWriter(entries, delta: delta, showProgress: showProgress)
        var counts = (added: 0, fromDelta: 0, copied: 0)
        try writer.writeAll(copying: base, progress: { done, bytes, name in
            progress?.update(tensors: done, bytes: bytes, current: name)
        }, tensor: { entry in
            if let baseTensor = base.contains(entry.name) ? try base.tensor(entry.name) : nil {
                if delta.contains(entry.name), baseTensor.dtype.isComputable {
                    let change = try delta.tensor(entry.name)
                    guard change.dtype.isComputable else {
                        throw PruneError("\(deltaPath): tensor \"\(entry.name)\" is \(change.dtype.name); a delta must be floating point")
                    }
                    try requireFinite(change, entry.name)
                    counts.added += 1
                    return try add(baseTensor, change, dtype: entry.dtype)
                }
                counts.copied += 1
                return entry.dtype == baseTensor.dtype ? baseTensor : try baseTensor.converted(to: entry.dtype)
            }
            let values = try delta.tensor(entry.name)
            if values.dtype.isComputable { try requireFinite(values, entry.name) }
            counts.fromDelta += 1
            return entry.dtype == values.dtype ? values : try values.converted(to: entry.dtype)
        }, written: { entry in
            base.releasePages(of: entry.name)
            delta.releasePages(of: entry.name)
        })
        progress?.finish()
        return counts
    }

    /// A NaN or infinity in a delta would silently poison the merged model.
    private func requireFinite(_ tensor: Tensor, _ name: String) throws {
        let counts = try countNonFinite(tensor)
        if counts.nan > 0 {
            throw PruneError("\(deltaPath): tensor \"\(name)\" holds \(counts.nan) NaN value\(counts.nan == 1 ? "" : "s"); a delta must be finite")
        }
        if counts.infinite > 0 {
            throw PruneError("\(deltaPath): tensor \"\(name)\" holds infinite values; a delta must be finite")
        }
    }

    /// The output writer (the base's run metadata carried over, less `dropping` keys) and
    /// the progress bar, shared by dense and sparse deltas.
    func makeWriter(_ entries: [SafetensorsWriter.Entry], delta: Checkpoint, showProgress: Bool,
                    dropping dropped: String? = nil) throws -> (ShardedWriter, Progress?) {
        var metadata = delta.shards.first?.metadata.filter { key, _ in
            key.hasPrefix("lopper.") && !(dropped.map { key.hasPrefix($0) } ?? false)
        } ?? [:]
        metadata["lopper.output"] = "merged"
        metadata["lopper.applied_to"] = basePath
        let writer = try ShardedWriter(folder: outputPath, entries: entries, maxShardBytes: shardSize,
                                       metadata: metadata, overwrite: overwrite)
        return (writer, showProgress ? Progress(tensors: entries.count, bytes: entries.reduce(0) { $0 + $1.byteCount }) : nil)
    }
}
