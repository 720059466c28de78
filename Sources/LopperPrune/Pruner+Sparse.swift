import Foundation
import LopperCore
import LopperIO

/// `--output sparse`: what a sparse delta stores of the tensors the selection keeps.
public struct SparseOptions: Sendable {
    public enum Kept: String, Sendable, CaseIterable {
        /// Their fine-tuned values, dense (apply needs nothing of the base for them).
        case finetuned
        /// Only the positions where they differ from the base, with the fine-tuned values there.
        case delta
    }
    public var kept: Kept = .finetuned
    public init(kept: Kept = .finetuned) { self.kept = kept }
}

extension Pruner {
    /// Prunes every tensor as `--output merged` would and stores each as a patch of its
    /// base tensor (`SparseEncoder`). Parts go to a spill file beside the output while
    /// they are made (their sizes decide the header), then one `ShardedWriter.writeAll`
    /// pass writes the folder. The output holds what the merged output would, so
    /// `lopper apply` rebuilds that byte for byte.
    func runSparse(_ options: SparseOptions, progress: Progress?) throws -> RunReport {
        let started = Date()
        var report = RunReport(lopperVersion: configuration.lopperVersion, method: method.name,
                               parameters: recordedParameters, seed: configuration.seed, output: "sparse")
        report.methodVersion = method.version
        let parent = URL(fileURLWithPath: configuration.outputPath).deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw SafetensorsError(configuration.outputPath, "cannot create the folder \(parent): \(plainReason(error))")
        }
        let spill = try SpillFile(beside: configuration.outputPath)
        defer { spill.remove() }
        var entries: [SafetensorsWriter.Entry] = [], offsets: [Int] = [], records: [Any] = []
        var bytesDone = 0
        _ = try modelSelection()   // its first pass before any mask draw is logged
        for (done, tensor) in plan.enumerated() {
            progress?.update(tensors: done, bytes: bytesDone, current: tensor.name)
            let log = MaskDrawLog()
            let (output, line) = try log.recording { try process(tensor) }
            report.bytesRead += tensor.shape.reduce(1, *) * tensor.sourceDType.byteSize * (line.action == "pruned" ? 2 : 1)
            report.tensors.append(line)
            let againstBase = tensor.isPruned || options.kept == .delta
            let baseTensor = againstBase && base.info(tensor.name)?.shape == tensor.shape ? try base.tensor(tensor.name) : nil
            let sparse = try SparseEncoder.encode(tensor.name, output: output, base: baseTensor, draws: log.draws)
            for (name, part) in sparse.parts {
                offsets.append(try spill.append(part))
                entries.append(.init(name: name, dtype: part.dtype, shape: part.shape))
            }
            records.append(sparse.record.json(name: tensor.name))
            finetuned.releasePages(of: tensor.name)
            base.releasePages(of: tensor.name)
            bytesDone += tensor.byteCount
        }
        var metadata = try runMetadata(report)
        metadata[SparseFormat.formatKey] = SparseFormat.version
        metadata[SparseFormat.tensorsKey] = String(decoding: try JSONSerialization.data(withJSONObject: records, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        metadata["lopper.sparse.kept"] = options.kept.rawValue
        let writer = try ShardedWriter(folder: configuration.outputPath, entries: entries,
                                       maxShardBytes: configuration.shardSize ?? ShardedWriter.defaultShardBytes,
                                       metadata: metadata, overwrite: configuration.overwrite)
        let mapping = spill.size > 0 ? try spill.map() : nil
        var index = 0
        try writer.writeAll(copying: finetuned, tensor: { entry in
            defer { index += 1 }
            guard entry.byteCount > 0, let mapping else { return try Tensor(zeros: entry.shape, dtype: entry.dtype) }
            let storage = Storage(mapping: mapping, offset: offsets[index], byteCount: entry.byteCount)
            return try Tensor(view: storage, byteOffset: 0, shape: entry.shape, dtype: entry.dtype)
        })
        progress?.finish()
        report.bytesWritten = entries.reduce(0) { $0 + $1.byteCount }
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
