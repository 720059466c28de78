import CLua
import CLuaShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LopperCore
import LopperIO

/// `lopper.save(tensors, path [, opts])`.
///
/// Sources: a table `{name = tensor}` (sorted by name), an array of `{name, tensor}`
/// pairs (in order), a Checkpoint or a Delta (their name order; a Delta's tensors are
/// computed one at a time while writing), or an iterator function returning
/// `name, tensor` until nil. The iterator is called exactly once per tensor; because a
/// safetensors header lists every tensor before the data, its tensors are streamed to
/// a temporary file beside the output and assembled when it is exhausted, so only
/// one tensor is in memory at a time (at the cost of the output's size in extra disk
/// space while saving).
///
/// `path` ending in `.safetensors` writes one file; anything else a Hugging Face
/// folder (`model.safetensors`, or `model-0000i-of-0000n.safetensors` shards of at most
/// `opts.shard_size` bytes with `model.safetensors.index.json`). Both are written under
/// a temporary name and renamed into place only when complete.
enum LuaSave {
    struct Options {
        var shardSize: Int?
        var metadata: [String: String] = [:]
        var dtype: DType?
        var overwrite = false
        var copyFiles: Checkpoint?
    }

    /// A planned output: entries (dtype after conversion) and a way to make each tensor.
    struct Plan {
        var entries: [SafetensorsWriter.Entry]
        var tensor: (Int) throws -> Tensor
    }

    static func save(_ stack: LuaStack) throws -> Int32 {
        let path = try stack.string(2, "save")
        let options = try parseOptions(stack, path)
        let isFile = path.hasSuffix(".safetensors")
        if isFile, options.shardSize != nil {
            throw LuaError("save: \(path): shard_size needs a folder path (one not ending in .safetensors)")
        }
        // Like `mkdir -p` for the parent: saving into a new folder tree just works.
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw LuaError("save: \(path): cannot create the folder \(parent): \(plainReason(error))")
        }
        // The rule of every output: never an input (the checkpoints saved from or copied
        // from), replaced only with overwrite = true.
        var paths = OutputGuard(overwrite: options.overwrite, overwriteHint: "pass {overwrite = true} to replace it")
        if let checkpoint = CheckpointFunctions.object(stack, 1) { paths.input("being saved", checkpoint.path) }
        if let delta = DeltaUserdata.object(stack, 1) {
            paths.input("the delta's base", delta.base.path)
            paths.input("the delta's fine-tuned checkpoint", delta.finetuned.path)
        }
        paths.input("copy_files", options.copyFiles?.path)
        paths.output("save", path, isFile ? .file : .folder)
        do { try paths.check() } catch { throw LuaError("\(error)") }

        var spill: SpillFile?
        defer { spill?.remove() }
        let plan: Plan
        if let checkpoint = CheckpointFunctions.object(stack, 1) {
            plan = try checkpointPlan(checkpoint, options, path)
        } else if let delta = DeltaUserdata.object(stack, 1) {
            plan = try deltaPlan(delta, options, path)
        } else if stack.type(1) == LUA_TTABLE {
            plan = try tablePlan(stack, options, path)
        } else if stack.type(1) == LUA_TFUNCTION {
            let file: SpillFile
            do { file = try SpillFile(beside: path) } catch { throw LuaError("save: \(error)") }
            spill = file
            plan = try iteratorPlan(stack, options, path, into: file)
        } else {
            throw LuaError.badArgument(1, "save", "table of tensors, checkpoint, delta or iterator function", got: stack.typeName(1))
        }
        do {
            try write(plan, to: path, isFile: isFile, options: options)
        } catch let error as LuaError {
            throw error
        } catch {
            throw LuaError("save: \(error)")
        }
        return 0
    }

    // MARK: - Writing

    private static func write(_ plan: Plan, to path: String, isFile: Bool, options: Options) throws {
        if isFile {
            let writer = try SafetensorsWriter(path: path, entries: plan.entries, metadata: options.metadata)
            for (index, entry) in plan.entries.enumerated() { try writer.write(try plan.tensor(index), name: entry.name) }
            try writer.finish()
        } else {
            let writer = try ShardedWriter(folder: path, entries: plan.entries,
                                           maxShardBytes: options.shardSize ?? ShardedWriter.defaultShardBytes,
                                           metadata: options.metadata, overwrite: options.overwrite)
            var index = 0
            try writer.writeAll(copying: options.copyFiles, tensor: { _ in
                defer { index += 1 }
                return try plan.tensor(index)
            })
        }
    }

    /// `tensor` in the output dtype: floating-point tensors are converted to
    /// `opts.dtype`; integer and BOOL tensors are written unchanged.
    static func outputDType(_ dtype: DType, _ options: Options) -> DType {
        guard let target = options.dtype, dtype.isComputable else { return dtype }
        return target
    }

    static func prepared(_ tensor: Tensor, _ name: String, _ options: Options, _ path: String) throws -> Tensor {
        let target = outputDType(tensor.dtype, options)
        guard target != tensor.dtype else { return tensor }
        do { return try tensor.converted(to: target) } catch {
            throw LuaError("save: \(path): tensor \"\(name)\": cannot convert \(tensor.dtype) to \(target): \(error)")
        }
    }

    // MARK: - Sources

    private static func checkpointPlan(_ checkpoint: LuaCheckpoint, _ options: Options, _ path: String) throws -> Plan {
        let entries = try checkpoint.names.map { name -> SafetensorsWriter.Entry in
            let info = try checkpoint.info(name, "save")
            return .init(name: name, dtype: outputDType(info.dtype, options), shape: info.shape)
        }
        return Plan(entries: entries) { index in
            let name = entries[index].name
            return try prepared(try checkpoint.tensor(name, "save"), name, options, path)
        }
    }

    private static func deltaPlan(_ delta: LuaDelta, _ options: Options, _ path: String) throws -> Plan {
        let dtype = options.dtype ?? .f32
        guard dtype.isComputable else { throw LuaError("save: a delta is written as F32, F16, BF16 or F64, not \(dtype)") }
        let entries = try delta.names.map { SafetensorsWriter.Entry(name: $0, dtype: dtype, shape: try delta.shape($0, "save: \(path)")) }
        return Plan(entries: entries) { index in try delta.delta(entries[index].name, "save: \(path)", dtype: dtype) }
    }

    /// `{name = tensor}` in name order, or `{{name, tensor}, ...}` in array order.
    private static func tablePlan(_ stack: LuaStack, _ options: Options, _ path: String) throws -> Plan {
        let state = stack.state
        var tensors: [(String, Tensor)] = []
        let count = Int(lua_rawlen(state, 1))
        if count > 0 {
            for position in 1...count {
                lua_rawgeti(state, 1, lua_Integer(position))
                defer { stack.pop() }
                guard stack.type(-1) == LUA_TTABLE else {
                    throw LuaError("save: entry \(position) must be a {name, tensor} pair, got a \(stack.typeName(-1)) value")
                }
                lua_rawgeti(state, -1, 1)
                lua_rawgeti(state, -2, 2)
                defer { stack.pop(2) }
                guard let name = stack.stringValue(-2), let tensor = TensorUserdata.tensor(at: -1, on: stack) else {
                    throw LuaError("save: entry \(position) must be a {name, tensor} pair, got {\(stack.typeName(-2)), \(stack.typeName(-1))}")
                }
                tensors.append((name, tensor))
            }
        } else {
            stack.pushNil()
            while lua_next(state, 1) != 0 {
                defer { stack.pop() }
                // (On an error the stack is discarded: no need to rebalance it.)
                guard let name = stack.stringValue(-2) else {
                    throw LuaError("save: table keys must be tensor names (strings), got a \(stack.typeName(-2)) key")
                }
                guard let tensor = TensorUserdata.tensor(at: -1, on: stack) else {
                    throw LuaError("save: \"\(name)\" must be a tensor, got a \(stack.typeName(-1)) value")
                }
                tensors.append((name, tensor))
            }
            tensors.sort { $0.0 < $1.0 }
        }
        let entries = tensors.map { SafetensorsWriter.Entry(name: $0.0, dtype: outputDType($0.1.dtype, options), shape: $0.1.shape) }
        return Plan(entries: entries) { index in try prepared(tensors[index].1, tensors[index].0, options, path) }
    }

    /// Calls the iterator until it returns nil, spilling each tensor to `file`.
    private static func iteratorPlan(_ stack: LuaStack, _ options: Options, _ path: String, into file: SpillFile) throws -> Plan {
        var entries: [SafetensorsWriter.Entry] = []
        var offsets: [Int] = []
        var seen = Set<String>()
        while true {
            stack.pushCopy(of: 1)
            try stack.call(arguments: 0, results: 2)
            defer { stack.pop(2) }
            if stack.isNoneOrNil(-2) { break }
            guard let name = stack.stringValue(-2) else {
                throw LuaError("save: the iterator must return a name (string) and a tensor, got a \(stack.typeName(-2)) name")
            }
            guard let tensor = TensorUserdata.tensor(at: -1, on: stack) else {
                throw LuaError("save: the iterator returned a \(stack.typeName(-1)) value for \"\(name)\", expected a tensor")
            }
            guard seen.insert(name).inserted else { throw LuaError("save: \(path): the iterator returned \"\(name)\" twice") }
            let output = try prepared(tensor, name, options, path)
            offsets.append(file.size)
            do { try file.append(output) } catch { throw LuaError("save: \(error)") }
            entries.append(.init(name: name, dtype: output.dtype, shape: output.shape))
        }
        let mapping: MappedFile
        do { mapping = try file.map() } catch { throw LuaError("save: \(error)") }
        return Plan(entries: entries) { index in
            let storage = Storage(mapping: mapping, offset: offsets[index], byteCount: entries[index].byteCount)
            return try Tensor(view: storage, byteOffset: 0, shape: entries[index].shape, dtype: entries[index].dtype)
        }
    }

    // MARK: - Options

    private static func parseOptions(_ stack: LuaStack, _ path: String) throws -> Options {
        var options = Options()
        if stack.isNoneOrNil(3) { return options }
        guard stack.type(3) == LUA_TTABLE else { throw LuaError.badArgument(3, "save", "options table", got: stack.typeName(3)) }
        let state = stack.state
        let known: Set<String> = ["shard_size", "metadata", "dtype", "overwrite", "copy_files"]
        stack.pushNil()
        while lua_next(state, 3) != 0 {
            stack.pop()
            guard let key = stack.stringValue(-1), known.contains(key) else {
                let shown = stack.stringValue(-1).map { "'\($0)'" } ?? "a \(stack.typeName(-1)) key"
                stack.pop()
                throw LuaError("save: unknown option \(shown) (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        stack.field("shard_size", of: 3)
        if !stack.isNoneOrNil(-1) { options.shardSize = try shardSize(stack, path) }
        stack.pop()
        stack.field("dtype", of: 3)
        options.dtype = try stack.optionalDType(-1, "save")
        stack.pop()
        stack.field("overwrite", of: 3)
        options.overwrite = stack.boolean(-1)
        stack.pop()
        stack.field("copy_files", of: 3)
        if !stack.isNoneOrNil(-1) {
            if let checkpoint = CheckpointFunctions.object(stack, -1) { options.copyFiles = checkpoint.checkpoint }
            else if let delta = DeltaUserdata.object(stack, -1) { options.copyFiles = delta.finetuned.checkpoint }
            else { throw LuaError("save: copy_files must be a checkpoint or a delta, got a \(stack.typeName(-1)) value") }
        }
        stack.pop()
        if stack.field("metadata", of: 3) != LUA_TNIL {
            guard stack.type(-1) == LUA_TTABLE else {
                stack.pop()
                throw LuaError("save: metadata must be a table of strings")
            }
            stack.pushNil()
            while lua_next(state, -2) != 0 {
                defer { stack.pop() }
                guard let key = stack.stringValue(-2) else { stack.pop(2); throw LuaError("save: metadata keys must be strings") }
                if let text = stack.stringValue(-1) {
                    options.metadata[key] = text
                } else if stack.type(-1) == LUA_TNUMBER || stack.type(-1) == LUA_TBOOLEAN {
                    options.metadata[key] = stack.type(-1) == LUA_TBOOLEAN ? String(stack.boolean(-1)) : numberText(stack, -1)
                } else {
                    let type = stack.typeName(-1)
                    stack.pop(2)
                    throw LuaError("save: metadata value of \"\(key)\" must be a string, got a \(type) value")
                }
            }
        }
        stack.pop()
        return options
    }

    private static func numberText(_ stack: LuaStack, _ index: Int32) -> String {
        var isInteger: Int32 = 0
        let integer = lopper_tointeger(stack.state, index, &isInteger)
        if isInteger != 0 { return String(integer) }
        var isNumber: Int32 = 0
        return String(lopper_tonumber(stack.state, index, &isNumber))
    }

    /// Bytes, or a string such as `"2GB"`, `"500MB"`, `"1.5 GiB"` (kB/MB/GB/TB are
    /// powers of 1000 as Hugging Face uses them; KiB/MiB/GiB/TiB powers of 1024).
    static func shardSize(_ stack: LuaStack, _ path: String) throws -> Int {
        let bad = { (shown: String) in
            LuaError("save: \(path): bad shard_size \(shown) (use a positive number of bytes or a size such as \"2GB\" or \"500MB\")")
        }
        if stack.type(-1) == LUA_TNUMBER {
            let value = try stack.number(-1, "save")
            guard value >= 1, value < 9.0e18, value == value.rounded() else { throw bad(numberText(stack, -1)) }
            return Int(value)
        }
        guard let text = stack.stringValue(-1) else { throw bad("(a \(stack.typeName(-1)) value)") }
        guard let bytes = parseByteSize(text) else { throw bad("\"\(text)\"") }
        return bytes
    }
}
