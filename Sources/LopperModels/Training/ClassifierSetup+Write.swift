import Foundation
import LopperCore
import LopperIO

extension ClassifierSetup {
    /// The transformers class that loads this model with its head.
    var classifierClass: String {
        let family = ["bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "camembert": "Camembert"]
        return (family[model.config.modelType] ?? "Bert") + "ForSequenceClassification"
    }

    /// config.json with the head's labels (id2label, label2id) and, for a new head, its class.
    func configText(labelNames: [String]) -> String {
        guard case .object(var members) = configJSON else { return configJSON.text }
        func set(_ key: String, _ value: JSON) {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        }
        set("id2label", .object(labelNames.enumerated().map { (String($0), .string($1)) }))
        set("label2id", .object(labelNames.enumerated().map { ($1, .int($0)) }))
        members.removeAll { $0.0 == "num_labels" }
        if !createdTensors.isEmpty { set("architectures", .array([.string(classifierClass)])) }
        return JSON.object(members).text + "\n"
    }

    /// Writes the trained classifier (see `writeTrainedModel`), config.json with the labels.
    /// Names stay the base's, so that `prune` pairs them (transformers loads a head beside an
    /// encoder saved without its `bert.` prefix).
    public func write(to folder: String, base: String, labelNames: [String], metadata: [String: String],
                      overwrite: Bool) throws {
        try writeTrainedModel(model.parameters, base: base, to: folder, created: createdTensors,
                              config: configText(labelNames: labelNames), metadata: metadata, overwrite: overwrite)
    }
}

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
