import LopperCore

/// The host's first pass for `granularity = model` (`ModelSelection`): which tensors select
/// together, and their scores, computed as the per-tensor pass computes them.
extension Pruner {
    /// The run's model-wide selection, made on first use (nil when no tensor selects at
    /// `granularity = model`). Every way of running the plan (`run`, sparse, `verify`) goes
    /// through `process`, which asks for it.
    func modelSelection() throws -> ModelSelection? {
        if let prepared = preparedModelSelection { return prepared.selection }
        var names: [String] = [], rates: [(String, Double)] = []
        for tensor in plan where tensor.isPruned {
            let parameters = try method.schema.resolve(configuration.settings, name: tensor.name,
                                                       layer: layerIndex(of: tensor.name), layerCount: layerCount)
            guard parameters["granularity"]?.description == Granularity.model.rawValue else { continue }
            names.append(tensor.name)
            rates.append((tensor.name, parameters["rate"]?.number ?? 0))
        }
        var selection: ModelSelection?
        if let (first, rate) = rates.first, rate > 0 {
            if let (other, otherRate) = rates.first(where: { $0.1 != rate }) {
                throw PruneError("granularity=model keeps one top-k over the whole model, but tensor \"\(first)\" has rate \(ParamValue.format(rate)) and \"\(other)\" rate \(ParamValue.format(otherRate)): give them one rate")
            }
            guard configuration.output != .adapter else {
                throw PruneError("granularity=model selects over merged deltas; --output adapter prunes LoRA factors: use --output merged, delta or sparse")
            }
            let planned = Dictionary(plan.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            selection = try ModelSelection(names: names, rate: rate) { [unowned self] name in
                guard let tensor = planned[name] else { throw PruneError("tensor \"\(name)\" is not in the plan") }
                defer {
                    finetuned.releasePages(of: name)
                    base.releasePages(of: name)
                }
                return try method.scores(try job(for: tensor))
            }
        }
        preparedModelSelection = PreparedModelSelection(selection: selection)
        return selection
    }
}

/// The model-wide selection once made (its `selection` nil when the run has none).
struct PreparedModelSelection {
    let selection: ModelSelection?
}
