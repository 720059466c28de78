import CLua
import CLuaShim
import LopperCore
import LopperIO

/// A lazy delta of two checkpoints: nothing is computed until a tensor is asked for.
/// Its names are those of the fine-tuned checkpoint that also exist in the base, in
/// the fine-tuned file order. A name whose shapes differ stays listed; asking for its
/// delta is an error naming the tensor and both shapes.
final class LuaDelta {
    let base: LuaCheckpoint
    let finetuned: LuaCheckpoint
    let names: [String]

    init(base: LuaCheckpoint, finetuned: LuaCheckpoint) {
        self.base = base
        self.finetuned = finetuned
        names = finetuned.names.filter { base.checkpoint.contains($0) }
    }

    func contains(_ name: String) -> Bool { base.checkpoint.contains(name) && finetuned.checkpoint.contains(name) }

    /// The shape of the delta `name` (both shapes must agree).
    func shape(_ name: String, _ function: String) throws -> [Int] {
        guard contains(name) else { throw LuaError(unknown(name, function)) }
        let b = try base.info(name, function), f = try finetuned.info(name, function)
        guard b.shape == f.shape else {
            throw LuaError("\(function): tensor \"\(name)\" has shape \(b.shape.shapeText) in the base (\(base.path)) but \(f.shape.shapeText) in the fine-tuned checkpoint (\(finetuned.path))")
        }
        return f.shape
    }

    /// `finetuned[name] - base[name]`, computed now (F32 unless `dtype` says otherwise).
    func delta(_ name: String, _ function: String, dtype: DType = .f32) throws -> Tensor {
        _ = try shape(name, function)
        let b = try base.tensor(name, function), f = try finetuned.tensor(name, function)
        do { return try LopperCore.delta(f, b, dtype: dtype) } catch { throw LuaError("\(function): tensor \"\(name)\": \(error)") }
    }

    func unknown(_ name: String, _ function: String) -> String {
        let side = finetuned.checkpoint.contains(name) ? "base \(base.path)"
            : base.checkpoint.contains(name) ? "fine-tuned checkpoint \(finetuned.path)"
            : "either checkpoint (base \(base.path), fine-tuned \(finetuned.path))"
        var text = "\(function): no tensor \"\(name)\" in \(side)"
        if let close = LuaObjects.suggestion(for: name, in: names) { text += " (did you mean \"\(close)\"?)" }
        return text
    }

    var summary: String {
        "Delta(\(finetuned.path) - \(base.path): \(names.count) tensors)"
    }
}

enum DeltaUserdata {
    static let metatable = "lopper.Delta"

    static func register(in stack: LuaStack) {
        LuaObjects.register(metatable, prefix: "Delta", in: stack, methods: methods, metamethods: metamethods) { stack, name in
            let delta = try self.delta(stack, 1, "Delta:index")
            guard delta.contains(name) else { stack.pushNil(); return 1 }
            stack.push(try delta.delta(name, "index"))
            return 1
        }
    }

    static func object(_ stack: LuaStack, _ index: Int32) -> LuaDelta? {
        stack.object(index, metatable: metatable, as: LuaDelta.self)
    }

    static func delta(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> LuaDelta {
        try stack.object(index, metatable: metatable, as: LuaDelta.self, function, kind: "delta")
    }

    static let methods: [(String, LuaFunction)] = [
        ("names", { stack in stack.push(strings: try delta(stack, 1, "Delta:names").names); return 1 }),
        ("tensor", { stack in
            let delta = try delta(stack, 1, "Delta:tensor")
            stack.push(try delta.delta(try stack.string(2, "Delta:tensor"), "tensor"))
            return 1
        }),
        ("base", { stack in
            let delta = try delta(stack, 1, "Delta:base")
            stack.push(try side(delta, delta.base, try stack.string(2, "Delta:base"), "base"))
            return 1
        }),
        ("finetuned", { stack in
            let delta = try delta(stack, 1, "Delta:finetuned")
            stack.push(try side(delta, delta.finetuned, try stack.string(2, "Delta:finetuned"), "finetuned"))
            return 1
        }),
    ]

    /// One side's tensor; names outside the delta are errors too, so `d:base(n)` and
    /// `d[n]` agree on what exists.
    private static func side(_ delta: LuaDelta, _ checkpoint: LuaCheckpoint, _ name: String, _ function: String) throws -> Tensor {
        guard delta.contains(name) else { throw LuaError(delta.unknown(name, function)) }
        return try checkpoint.tensor(name, function)
    }

    static let metamethods: [(String, LuaFunction)] = [
        ("__len", { stack in stack.push(try delta(stack, 1, "len").names.count); return 1 }),
        ("__tostring", { stack in stack.push(try delta(stack, 1, "tostring").summary); return 1 }),
        ("__pairs", LuaObjects.pairs("pairs", names: { try delta($0, 1, "pairs").names }, value: { stack, name in
            stack.push(try delta(stack, 1, "pairs").delta(name, "pairs"))
        })),
    ]
}
