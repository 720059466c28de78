import LopperIO

extension TensorSelection {
    /// The decision for tensor `name` of `finetuned`, checked when it is to be pruned:
    /// floating point on both sides, present in `base` with the same shape; a base tensor a LoRA
    /// adapter leaves alone is kept. Every command
    /// that selects tensors (prune, diff, search-q, calibrate) decides through here.
    public func decide(_ name: String, base: Checkpoint, finetuned: Checkpoint) throws -> Decision {
        let decision = decide(name: name) { finetuned.info($0)?.shape }
        guard decision.isPrune, let info = finetuned.info(name) else { return decision }
        if finetuned.isUnchangedByAdapter(name) { return .keep("not changed by the adapter") }
        guard info.dtype.isComputable else {
            throw PruneError("\(finetuned.path): tensor \"\(name)\" is \(info.dtype.name); only F32, F16, BF16 and F64 tensors can be pruned (exclude it with --exclude)")
        }
        guard let baseInfo = base.info(name) else {
            throw PruneError("\(base.path): no tensor \"\(name)\", which the fine-tuned checkpoint has and the method should prune (exclude it with --exclude '\(name)')")
        }
        guard baseInfo.shape == info.shape else {
            throw PruneError("tensor \"\(name)\": shape \(info.shape.shapeText) in \(finetuned.path) vs \(baseInfo.shape.shapeText) in \(base.path)")
        }
        guard baseInfo.dtype.isComputable else {
            throw PruneError("\(base.path): tensor \"\(name)\" is \(baseInfo.dtype.name), which cannot be pruned")
        }
        return decision
    }
}
