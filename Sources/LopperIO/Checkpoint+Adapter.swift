import LopperCore

extension Checkpoint {
    /// The fine-tuned side of a pair: a checkpoint, or a PEFT LoRA adapter folder, which
    /// reads as `base` with the adapter merged in (see `LoraAdapter`), so every command
    /// and method sees a fine-tuned model and prunes the adapter's delta as a full one.
    public static func finetuned(path: String, base: Checkpoint) throws -> Checkpoint {
        guard LoraAdapter.isAdapterFolder(path) else { return try Checkpoint(path: path) }
        let adapter = try LoraAdapter(path: path, base: base)
        return Checkpoint(path: path, adapting: base, with: Adaptation(adapter, base: base))
    }

    /// The LoRA adapter this checkpoint merges into its base, if it is one.
    public var adapter: LoraAdapter? { adaptation?.adapter }

    /// True for a base tensor an adapter leaves as it is (false on a checkpoint on disk).
    public func isUnchangedByAdapter(_ name: String) -> Bool {
        guard let adaptation else { return false }
        return adaptation.info(name) == nil
    }
}

/// What a LoRA adapter changes in its base, by base tensor name. An adapted weight reads
/// as `W0 + scaling * B @ A` in F32, computed when asked for (one tensor at a time), so
/// the delta a method sees is the adapter's to within one F32 rounding of `W0` however the
/// model is stored; its `info` keeps the base's dtype, which outputs are written in.
/// A `lora_B.bias` adds `scaling * bias` to the base bias; `modules_to_save` tensors
/// replace the base's (or are added when the base lacks them).
final class Adaptation: @unchecked Sendable {
    enum Change {
        case product(LoraAdapter.Module)
        case bias(LoraAdapter.Module)
        case saved(String)
    }

    let adapter: LoraAdapter
    private let changes: [String: (change: Change, info: TensorInfo)]
    /// Base tensors the adapter file replaces (`base_layer` weights under a product).
    private let replaced: [String: String]
    let addedNames: [String]

    init(_ adapter: LoraAdapter, base: Checkpoint) {
        self.adapter = adapter
        var changes: [String: (Change, TensorInfo)] = [:]
        var added: [String] = []
        for (target, factor) in adapter.savedTensors {
            var info = adapter.file.info(factor)!
            info.name = target
            changes[target] = (.saved(factor), info)
            if !base.contains(target) { added.append(target) }
        }
        replaced = Dictionary(adapter.savedTensors.map { ($0.target, $0.factor) }, uniquingKeysWith: { first, _ in first })
        for module in adapter.modules {
            changes[module.target] = (.product(module), base.info(module.target)!)
            if let bias = module.bias { changes[bias.target] = (.bias(module), base.info(bias.target)!) }
        }
        self.changes = changes
        addedNames = added
    }

    func info(_ name: String) -> TensorInfo? { changes[name]?.info }

    /// The adapted tensor `name` of `checkpoint` (nil when the adapter leaves it alone).
    func tensor(_ name: String, in checkpoint: Checkpoint) throws -> Tensor? {
        guard let (change, _) = changes[name] else { return nil }
        switch change {
        case .product(let module):
            let base = try replaced[name].map { try adapter.file.tensor($0) } ?? checkpoint.shard(of: name)!.tensor(name)
            return try adapter.delta(of: module, base: base)
        case .bias(let module):
            let bias = try adapter.file.tensor(module.bias!.factor)
            return try add(try checkpoint.shard(of: name)!.tensor(name), try scale(bias, Float(module.scaling)))
        case .saved(let factor):
            return try adapter.file.tensor(factor)
        }
    }
}
