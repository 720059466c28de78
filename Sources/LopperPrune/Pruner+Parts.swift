import LopperIO

// `--part i/n`: one part of the output's shards (`ShardPart`). The layout comes from the
// plan alone (the fine-tuned shards, or --shard-size over the planned sizes), so every
// part computes the same one before any tensor is processed.
extension Pruner {
    /// The output's shards: the fine-tuned checkpoint's layout, or groups of --shard-size.
    var outputLayout: [[SafetensorsWriter.Entry]] {
        let entries = plan.map { SafetensorsWriter.Entry(name: $0.name, dtype: $0.outputDType, shape: $0.shape) }
        if let shardSize = configuration.shardSize { return ShardedWriter.layout(entries, maxShardBytes: shardSize) }
        var shards = [[SafetensorsWriter.Entry]](repeating: [], count: max(1, finetuned.shards.count))
        for (tensor, entry) in zip(plan, entries) { shards[tensor.shard].append(entry) }
        return shards
    }

    /// Refuses a part of an output whose layout is not known from the plan, or too few shards.
    func checkPart() throws {
        guard let part = configuration.part else { return }
        if configuration.sparse != nil {
            throw PruneError("--part does not apply to --output sparse: its shard layout depends on the encoded sizes, known only after every tensor is pruned")
        }
        if configuration.output == .adapter { throw PruneError("--part does not apply to --output adapter (one adapter_model.safetensors)") }
        try part.check(shardCount: outputLayout.filter { !$0.isEmpty }.count)
    }

    /// What a part writes, for --dry-run.
    public var partText: String? {
        guard let part = configuration.part else { return nil }
        let layout = outputLayout.filter { !$0.isEmpty }
        let mine = part.shards(of: layout.count)
        let names = ShardedWriter.shardNames(count: layout.count)
        let tensors = layout[mine].reduce(0) { $0 + $1.count }
        return "part \(part) writes \(mine.count) of \(layout.count) shards (\(names[mine.lowerBound])\(mine.count > 1 ? " to " + names[mine.upperBound - 1] : ""), \(tensors) tensors) into \(part.folder(for: configuration.outputPath))"
    }

    /// The planned tensors this run writes: all, or those of this part's shards.
    public var writtenPlan: [PlannedTensor] {
        guard let part = configuration.part else { return plan }
        let layout = outputLayout.filter { !$0.isEmpty }
        let names = Set(layout[part.shards(of: layout.count)].flatMap { $0.map(\.name) })
        return plan.filter { names.contains($0.name) }
    }
}
