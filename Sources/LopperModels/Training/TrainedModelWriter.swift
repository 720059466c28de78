import Foundation
import LopperCore
import LopperIO

/// Writes trained parameters as a Hugging Face folder: every tensor of the base in its dtype
/// (parameters rounded from F32, anything else copied; `created` tensors, which the base
/// lacks, in the embeddings' dtype), the base's config and tokenizer
/// files (`config` replaces config.json when given), `metadata` in every shard. Through
/// `ShardedWriter`: complete or absent, whatever happens.
public func writeTrainedModel(_ parameters: ParameterSet, base: String, to folder: String, created: [String] = [],
                              config: String? = nil,
                              metadata: [String: String], overwrite: Bool) throws {
    let checkpoint = try Checkpoint(path: base)
    let embeddingType = parameters.all.first.flatMap { checkpoint.info($0.name)?.dtype } ?? .f32
    var entries: [SafetensorsWriter.Entry] = []
    func add(_ name: String, _ dtype: DType, _ shape: [Int]) { entries.append(.init(name: name, dtype: dtype, shape: shape)) }
    for name in checkpoint.names {
        guard let info = checkpoint.info(name) else { continue }
        add(name, info.dtype, info.shape)
    }
    for name in created { add(name, embeddingType, parameters[name]!.shape) }
    let writer = try ShardedWriter(folder: folder, entries: entries, metadata: metadata, overwrite: overwrite)
    do {
        try checkpoint.copyOtherFiles(to: writer.temporaryFolder)
        if let config {
            let path = writer.temporaryFolder + "/config.json"
            unlink(path)
            try writeFile(Data(config.utf8), to: path)
        }
    } catch {
        writer.abandon()
        throw error
    }
    try writer.writeAll(tensor: { entry in
        guard let p = parameters[entry.name] else { return try checkpoint.tensor(entry.name) }
        return entry.dtype == .f32 ? p.value : try p.value.converted(to: entry.dtype)
    })
}
