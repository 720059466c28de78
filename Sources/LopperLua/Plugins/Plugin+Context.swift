import CLua
import CLuaShim
import LopperCore
import LopperPrune

/// `ctx`, the second argument of every hook: a plain table of this tensor's facts
/// (name, layer, layer_count, kind, shape, dtype, seed, output, params, stats, base,
/// finetuned), `rng` (Philox streams keyed to this tensor) and the functions
/// `report(key, value)` and `note(text)`, which refuse to run once the tensor is done.
extension Plugin {
    static let rngMetatable = "lopper.Rng"

    func pushContext(for state: JobState, on stack: LuaStack) {
        let lua = stack.state, job = state.job
        lua_createtable(lua, 0, 16)
        let table = stack.top
        stack.push(job.name); stack.setField("name", in: table)
        if let layer = job.layer { stack.push(layer); stack.setField("layer", in: table) }
        stack.push(job.layerCount); stack.setField("layer_count", in: table)
        stack.push(job.kind); stack.setField("kind", in: table)
        stack.push(integers: job.base.shape); stack.setField("shape", in: table)
        stack.push(Int(Int64(bitPattern: job.seed))); stack.setField("seed", in: table)
        stack.push(job.output.rawValue); stack.setField("output", in: table)
        stack.push(job.outputDType.name); stack.setField("dtype", in: table)
        TensorUserdata.push(job.base, on: stack); stack.setField("base", in: table)
        TensorUserdata.push(job.finetuned, on: stack); stack.setField("finetuned", in: table)
        if !job.statistics.isEmpty {
            lua_createtable(lua, 0, Int32(job.statistics.count))
            let statistics = stack.top
            for (key, tensor) in job.statistics {
                TensorUserdata.push(tensor, on: stack)
                stack.setField(key, in: statistics)
            }
            stack.setField("stats", in: table)
        }
        lua_createtable(lua, 0, Int32(job.parameters.count))
        let parameters = stack.top
        for (key, value) in job.parameters {
            switch value {
            case .number(let number):
                if schema.spec(key)?.type == .integer, let exact = Int(exactly: number) { stack.push(exact) } else { stack.push(number) }
            case .string(let text): stack.push(text)
            case .boolean(let flag): stack.push(flag)
            case .schedule(let values): stack.push(values.first ?? 0)
            }
            stack.setField(key, in: parameters)
        }
        stack.setField("params", in: table)
        Self.pushRng(seed: Int64(bitPattern: job.seed), name: job.name, shape: job.base.shape, on: stack)
        stack.setField("rng", in: table)
        let serial = state.serial, tensor = job.name
        // Holds the plugin weakly: a ctx a plugin keeps must not keep its own state alive.
        let live: (String) throws -> JobState = { [weak self] function in
            guard let current = self?.current, current.serial == serial else {
                let now = self?.current.map { "while pruning \"\($0.job.name)\"" } ?? "after its hook returned"
                throw LuaError("\(function): the ctx of tensor \"\(tensor)\" was used \(now); a ctx is valid only during its own tensor's hook")
            }
            return current
        }
        stack.push(function: "ctx.report") { stack in
            let state = try live("ctx.report")
            let key = try stack.string(1, "ctx.report")
            if stack.type(2) == LUA_TNUMBER {
                let value = try stack.number(2, "ctx.report")
                if key == "rescale" { state.rescale = value } else { state.figures[key] = value }
            } else if let text = stack.stringValue(2) {
                state.notes.append("\(key): \(text)")
            } else {
                throw LuaError.badArgument(2, "ctx.report", "number or string", got: stack.typeName(2))
            }
            return 0
        }
        stack.setField("report", in: table)
        stack.push(function: "ctx.note") { stack in
            try live("ctx.note").notes.append(try stack.string(1, "ctx.note"))
            return 0
        }
        stack.setField("note", in: table)
    }

    /// Pushes `{seed =, name =, shape =}` with the shared `Rng` metatable.
    static func pushRng(seed: Int64, name: String, shape: [Int], on stack: LuaStack) {
        let state = stack.state
        lua_createtable(state, 0, 3)
        let table = stack.top
        stack.push(Int(seed)); stack.setField("seed", in: table)
        stack.push(name); stack.setField("name", in: table)
        stack.push(integers: shape); stack.setField("shape", in: table)
        if luaL_newmetatable(state, rngMetatable) != 0 {
            let meta = stack.top
            stack.push("locked"); stack.setField("__metatable", in: meta)
            lua_createtable(state, 0, Int32(rngMethods.count))
            let methods = stack.top
            for (method, body) in rngMethods {
                stack.push(function: "Rng:" + method, body)
                stack.setField(method, in: methods)
            }
            stack.setField("__index", in: meta)
        }
        lua_setmetatable(state, table)
    }

    /// The seed, stream name and default shape of the `rng` table at 1.
    private static func rng(_ stack: LuaStack, _ function: String) throws -> (Int64, String, [Int]) {
        guard stack.type(1) == LUA_TTABLE else { throw LuaError.badArgument(1, function, "rng", got: stack.typeName(1)) }
        let fields = RawTable(unchecked: stack, 1)
        guard let seed = fields.number("seed"), let exact = Int64(exactly: seed), let name = fields.string("name"),
              fields.type("shape") == LUA_TTABLE else {
            throw LuaError("\(function): not an rng (call it as ctx.rng:\(function.split(separator: ":").last ?? "")(...))")
        }
        let shape = try fields.push("shape") { try stack.shape(-1, function) }
        return (exact, name, shape)
    }

    /// An optional shape argument: a table, a tensor (its shape) or nothing (`fallback`).
    private static func shape(_ stack: LuaStack, _ index: Int32, _ function: String, fallback: [Int]) throws -> [Int] {
        if stack.isNoneOrNil(index) { return fallback }
        if let lazy = LazyUserdata.lazy(at: index, on: stack) { return lazy.shape }
        if let tensor = TensorUserdata.tensor(at: index, on: stack) { return tensor.shape }
        return try stack.shape(index, function)
    }

    private static let rngMethods: [(String, LuaFunction)] = [
        ("bernoulli", { stack in
            let (seed, name, fallback) = try rng(stack, "Rng:bernoulli")
            let keep = try stack.number(2, "Rng:bernoulli")
            guard keep >= 0, keep <= 1 else { throw LuaError("bernoulli: keep probability \(keep) is outside [0, 1]") }
            let shape = try shape(stack, 3, "Rng:bernoulli", fallback: fallback)
            let key = RandomKey(seed: UInt64(bitPattern: seed), name: name)
            LazyUserdata.push(try LazyTensor.bernoulli(shape, keep: keep, key: key), on: stack)
            return 1
        }),
        ("uniform", { stack in
            let (seed, name, fallback) = try rng(stack, "Rng:uniform")
            let shape = try shape(stack, 2, "Rng:uniform", fallback: fallback)
            try stack.checkAllocation(shape, .f32, "uniform")
            stack.push(try uniform(shape, key: RandomKey(seed: UInt64(bitPattern: seed), name: name)))
            return 1
        }),
        ("stream", { stack in
            let (seed, name, shape) = try rng(stack, "Rng:stream")
            let label = try stack.string(2, "Rng:stream")
            pushRng(seed: seed, name: name + "#" + label, shape: shape, on: stack)
            return 1
        }),
    ]
}
