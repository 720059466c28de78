import LopperCore
import LopperIO

// `--output adapter`: prune a LoRA adapter's factors themselves, as PEFT's
// `add_weighted_adapter(combination_type="dare_linear")` does (tuners/lora/model.py,
// utils/merge_utils.py): A and B are pruned separately, each as a delta from zero, with
// their own masks (keyed by the factor's name) and rescale. PEFT folds sqrt(scaling) into
// each factor and sets lora_alpha = r; Lopper keeps the factors' scale and the adapter's
// config as they were, which gives the same delta. The output is an adapter folder
// PEFT loads: the config and other files of the input adapter, and adapter_model.safetensors.
extension Pruner {
    var adapterSource: LoraAdapter {
        get throws {
            guard let adapter = finetuned.adapter else {
                throw PruneError("--output adapter prunes a LoRA adapter's factors: --finetuned \(configuration.finetunedPath) must be a PEFT adapter folder")
            }
            return adapter
        }
    }

    /// One entry per adapter tensor: a factor is pruned when the base tensor it changes
    /// would be (the one selection rule); full tensors (modules_to_save) are written as trained.
    func makeAdapterPlan() throws -> [PlannedTensor] {
        let adapter = try adapterSource
        guard configuration.calibrationPath == nil else {
            throw PruneError("--calibration does not apply to --output adapter: methods see the LoRA factors, which have no input statistics")
        }
        guard configuration.shardSize == nil else { throw PruneError("--shard-size does not apply to --output adapter (one adapter_model.safetensors)") }
        var planned: [PlannedTensor] = []
        for name in adapter.file.names {
            guard let info = adapter.file.info(name) else { continue }
            var decision = TensorSelection.Decision.keep("full tensor (modules_to_save, base_layer)")
            if let target = adapter.factorTargets[name] {
                decision = try configuration.selection.decide(target, base: base, finetuned: finetuned)
                if case .keep(let reason) = decision { decision = .keep("its weight is kept (\(reason))") }
            }
            var outputDType = info.dtype
            if let wanted = configuration.dtype, info.dtype.isComputable { outputDType = wanted }
            planned.append(PlannedTensor(name: name, shape: info.shape, sourceDType: info.dtype, outputDType: outputDType,
                                         decision: decision, shard: 0, byteCount: info.count * outputDType.byteSize))
        }
        return planned
    }

    func makeAdapterWriter(metadata: [String: String]) throws -> ShardedWriter {
        var metadata = metadata
        metadata["format"] = "pt"  // as PEFT writes it (save_pretrained)
        return try ShardedWriter(folder: configuration.outputPath,
                                 shards: [plan.map { SafetensorsWriter.Entry(name: $0.name, dtype: $0.outputDType, shape: $0.shape) }],
                                 metadata: metadata, overwrite: configuration.overwrite, stem: "adapter_model")
    }

    /// One adapter tensor: a factor pruned by the method (parameters resolved for the base
    /// tensor it changes, so globs and schedules mean what they mean for a model), or kept.
    func processFactor(_ tensor: PlannedTensor) throws -> (Tensor, TensorReport) {
        let adapter = try adapterSource
        let factor = try adapter.file.tensor(tensor.name)
        guard case .prune = tensor.decision, let target = adapter.factorTargets[tensor.name] else {
            var line = TensorReport(name: tensor.name, shape: tensor.shape, dtype: tensor.outputDType.name, action: "kept", layer: layerIndex(of: tensor.name))
            if case .keep(let reason) = tensor.decision { line.reason = reason }
            return (tensor.outputDType == factor.dtype ? factor : try factor.converted(to: tensor.outputDType), line)
        }
        let parameters = try method.schema.resolve(configuration.settings, name: target, layer: layerIndex(of: target), layerCount: layerCount)
        let job = PruneJob(name: tensor.name, layerCount: layerCount, base: try Tensor(zeros: factor.shape, dtype: factor.dtype),
                           finetuned: factor, parameters: parameters, seed: configuration.seed,
                           output: .delta, outputDType: tensor.outputDType)
        return try method.run(job)
    }
}
