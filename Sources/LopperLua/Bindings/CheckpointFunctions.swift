import CLua
import CLuaShim
import LopperCore
import LopperIO

/// A checkpoint opened from Lua: the LopperIO `Checkpoint` (headers only; tensors are
/// views of the mapped shards) and the position of each name for `pairs`.
final class LuaCheckpoint {
    let checkpoint: Checkpoint
    init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

    var path: String { checkpoint.path }
    var names: [String] { checkpoint.names }

    /// The tensor `name`; an unknown name is an error naming the checkpoint, the
    /// tensor and, when one is close, a likely intended name.
    func tensor(_ name: String, _ function: String) throws -> Tensor {
        guard checkpoint.contains(name) else { throw LuaError(unknown(name, function)) }
        do { return try checkpoint.tensor(name) } catch { throw LuaError("\(function): \(error)") }
    }

    func info(_ name: String, _ function: String) throws -> TensorInfo {
        guard let info = checkpoint.info(name) else { throw LuaError(unknown(name, function)) }
        return info
    }

    func unknown(_ name: String, _ function: String) -> String {
        var text = "\(function): no tensor \"\(name)\" in checkpoint \(path)"
        if let close = LuaObjects.suggestion(for: name, in: names) { text += " (did you mean \"\(close)\"?)" }
        return text
    }

    /// `__metadata__` of every shard, the first shard winning on a conflict.
    var metadata: [String: String] {
        var merged: [String: String] = [:]
        for shard in checkpoint.shards { merged.merge(shard.metadata) { first, _ in first } }
        return merged
    }

    var summary: String {
        let shards = checkpoint.shards.count
        return "Checkpoint(\(path): \(names.count) tensors\(shards > 1 ? " in \(shards) shards" : ""), \(byteText(checkpoint.totalBytes)))"
    }
}

/// `lopper.load`, `lopper.delta`, `lopper.save` and the Checkpoint and Delta
/// metatables. Trusted states only: `LopperModule.install` leaves these functions out
/// of plugin sandboxes (the metatables exist there, but nothing can make the objects).
enum CheckpointFunctions {
    static let metatable = "lopper.Checkpoint"

    static let functions: [(String, LuaFunction)] = [
        ("load", { stack in
            let path = try stack.string(1, "load")
            // A LoRA adapter folder needs the base it adapts (a path or a Checkpoint).
            let base = stack.isNoneOrNil(2) ? nil : try checkpointArgument(stack, 2, "load")
            let checkpoint: Checkpoint
            do {
                checkpoint = try base.map { try Checkpoint.finetuned(path: path, base: $0.checkpoint) } ?? Checkpoint(path: path)
            } catch { throw LuaError("load: \(error)") }
            stack.pushObject(LuaCheckpoint(checkpoint), metatable: metatable)
            return 1
        }),
        ("delta", { stack in
            if stack.isTensor(1) || stack.isTensor(2) {
                let base = try stack.tensor(1, "delta")
                let finetuned = try stack.tensor(2, "delta")
                stack.push(try delta(finetuned, base))
                return 1
            }
            let base = try checkpointArgument(stack, 1, "delta")
            let finetuned = try checkpointArgument(stack, 2, "delta", base: base)
            stack.pushObject(LuaDelta(base: base, finetuned: finetuned), metatable: DeltaUserdata.metatable)
            return 1
        }),
        ("save", { stack in try LuaSave.save(stack) }),
    ]

    static func registerMetatables(in stack: LuaStack) {
        LuaObjects.register(metatable, prefix: "Checkpoint", in: stack, methods: methods, metamethods: metamethods) { stack, name in
            let checkpoint = try self.checkpoint(stack, 1, "Checkpoint:index")
            guard checkpoint.checkpoint.contains(name) else { stack.pushNil(); return 1 }
            stack.push(try checkpoint.tensor(name, "index"))
            return 1
        }
        DeltaUserdata.register(in: stack)
    }

    /// The checkpoint at `index`, or nil when the value is not one.
    static func object(_ stack: LuaStack, _ index: Int32) -> LuaCheckpoint? {
        stack.object(index, metatable: metatable, as: LuaCheckpoint.self)
    }

    static func checkpoint(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> LuaCheckpoint {
        try stack.object(index, metatable: metatable, as: LuaCheckpoint.self, function, kind: "checkpoint")
    }

    /// A checkpoint argument: a Checkpoint value or a path to open (with `base`, a path may
    /// be a LoRA adapter folder, read as that base with the adapter merged in).
    static func checkpointArgument(_ stack: LuaStack, _ index: Int32, _ function: String, base: LuaCheckpoint? = nil) throws -> LuaCheckpoint {
        if let checkpoint = object(stack, index) { return checkpoint }
        guard let path = stack.stringValue(index) else {
            throw LuaError.badArgument(index, function, "two tensors, or two checkpoints or paths", got: stack.typeName(index))
        }
        do {
            return LuaCheckpoint(try base.map { try Checkpoint.finetuned(path: path, base: $0.checkpoint) } ?? Checkpoint(path: path))
        } catch { throw LuaError("\(function): \(error)") }
    }

    static let methods: [(String, LuaFunction)] = [
        ("names", { stack in stack.push(strings: try checkpoint(stack, 1, "Checkpoint:names").names); return 1 }),
        ("info", { stack in
            let checkpoint = try checkpoint(stack, 1, "Checkpoint:info")
            pushInfo(try checkpoint.info(try stack.string(2, "Checkpoint:info"), "info"), on: stack)
            return 1
        }),
        ("metadata", { stack in
            let metadata = try checkpoint(stack, 1, "Checkpoint:metadata").metadata
            lua_createtable(stack.state, 0, Int32(metadata.count))
            let table = stack.top
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                stack.push(value)
                stack.setField(key, in: table)
            }
            return 1
        }),
        ("tensor", { stack in
            let checkpoint = try checkpoint(stack, 1, "Checkpoint:tensor")
            stack.push(try checkpoint.tensor(try stack.string(2, "Checkpoint:tensor"), "tensor"))
            return 1
        }),
    ]

    static let metamethods: [(String, LuaFunction)] = [
        ("__len", { stack in stack.push(try checkpoint(stack, 1, "len").names.count); return 1 }),
        ("__tostring", { stack in stack.push(try checkpoint(stack, 1, "tostring").summary); return 1 }),
        ("__pairs", LuaObjects.pairs("pairs", names: { try checkpoint($0, 1, "pairs").names }, value: { stack, name in
            stack.push(try checkpoint(stack, 1, "pairs").tensor(name, "pairs"))
        })),
    ]

    /// `{dtype = "BF16", shape = {...}, bytes = n}`.
    static func pushInfo(_ info: TensorInfo, on stack: LuaStack) {
        lua_createtable(stack.state, 0, 3)
        let table = stack.top
        stack.push(info.dtype.name)
        stack.setField("dtype", in: table)
        stack.push(integers: info.shape)
        stack.setField("shape", in: table)
        stack.push(info.byteCount)
        stack.setField("bytes", in: table)
    }
}
