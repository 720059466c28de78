import CLua
import CLuaShim
import Foundation
import LopperCore
import LopperPrune

/// A pruning method written in Lua (the plugin contract, API 1): one file returning a
/// table with name, version, api, summary, typed params and hooks. It runs in its own
/// sandboxed state; PluginHost.swift is the Lua half that builds `ctx` and calls hooks.
public final class Plugin: PruneMethod {
    public let path: String
    public let name: String
    public let version: String
    public let summary: String
    /// The hooks the plugin defines, of apply, prune, score and rescale.
    public let hooks: [String]
    public let schema: ParamSchema
    let lua: LuaState
    private var current: JobState?
    // Stale ctx check: each tensor's ctx carries its job id (see PluginHost).
    private var jobCount = 0
    private var tensorOfJob: [Int: String] = [:]

    /// Where the host's functions live in the state's registry (one key per plugin,
    /// since a REPL state can hold several).
    private let hostKey: String

    /// What the hooks of one tensor have said so far.
    private final class JobState {
        let job: PruneJob
        let id: Int
        var delta: Tensor?
        var rescale: Double?
        var figures: [String: Double] = [:]
        var notes: [String] = []
        init(_ job: PruneJob, id: Int) { self.job = job; self.id = id }
    }

    /// Loads the plugin file at `path` into a new sandbox.
    public convenience init(path: String, limits: LuaState.Limits = .init()) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PluginError("\(path): cannot read the plugin file")
        }
        guard let source = String(data: data, encoding: .utf8) else { throw PluginError("\(path): not UTF-8 text") }
        // Lua shortens long chunk names in messages: name the chunk by its file name,
        // and errors carry the full path in front.
        let file = URL(fileURLWithPath: path).lastPathComponent
        try self.init(source: source, chunkName: "@" + file, path: path, limits: limits)
    }

    /// Loads plugin source code (`chunkName` as Lua names chunks: `@file` or `=name`).
    public convenience init(source: String, chunkName: String, path: String, limits: LuaState.Limits = .init()) throws {
        try self.init(lua: try LuaState(sandbox: limits), path: path, chunkName: chunkName) { $0.push(source) }
    }

    /// A plugin table defined in `lua` (the REPL's `try` with a table typed at the
    /// prompt): the value at stack index `index`. It runs in that state, unsandboxed,
    /// as the user's own code does.
    public convenience init(table index: Int32, in lua: LuaState, name: String) throws {
        let absolute = lua_absindex(lua.state, index)
        try self.init(lua: lua, path: name, chunkName: "=" + name) { lua_pushvalue($0.state, absolute) }
    }

    /// Runs the host chunk in `lua` with the plugin (source text or table) that
    /// `pushPlugin` pushes.
    private init(lua: LuaState, path: String, chunkName: String, pushPlugin: (LuaStack) -> Void) throws {
        self.path = path
        self.lua = lua
        hostKey = "lopper.plugin_host." + UUID().uuidString
        let state = lua.state, stack = lua.stack
        let base = stack.top
        var bytes = Array(PluginHost.source.utf8)
        let status = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { luaL_loadbufferx(state, $0.baseAddress, $0.count, "=lopper.plugin_host", "t") }
        }
        guard status == LUA_OK else { defer { stack.setTop(base) }; throw LuaError(stack.stringValue(-1) ?? "plugin host does not load") }
        pushPlugin(stack)
        stack.push(chunkName)
        var weakSelf: () -> Plugin? = { nil }
        Self.pushJobFunctions(on: stack) { weakSelf() }
        lopper_reset_instructions(state)
        do {
            try stack.call(arguments: 3, results: 1)
        } catch let error as LuaError {
            stack.setTop(base)
            throw PluginError("plugin \(path): \(error.message)")
        }
        lua_setfield(state, lopper_registryindex(), hostKey)
        let description = try Self.call(lua, hostKey, "describe") { _ in 0 }
        name = description[0].string ?? ""
        version = description[1].string ?? ""
        summary = description[2].string ?? ""
        hooks = (description[3].string ?? "").split(separator: ",").map(String.init)
        schema = ParamSchema(method: name, specs: try Self.parseSpecs(description[4].string ?? "", path: path))
        // The job functions were made before `self` existed; from here on they find it.
        weakSelf = { [weak self] in self }
    }

    // MARK: - Pruning

    public func prune(_ job: PruneJob) throws -> PruneOutcome {
        jobCount += 1
        let state = JobState(job, id: jobCount)
        tensorOfJob[state.id] = job.name
        current = state
        defer { current = nil; if lua.isSandboxed { lua.collectGarbage() } }
        let results: [LuaValue]
        do {
            results = try Self.call(lua, hostKey, "run") { stack in self.pushFields(job, on: stack); stack.push(state.id); return 2 }
        } catch let error as LuaError {
            throw PluginError("plugin \(name) (\(path)), tensor \"\(job.name)\": \(error.message)")
        }
        let figures = state.figures, notes = state.notes, rescale = state.rescale
        switch (results.first?.string, results.dropFirst().first?.tensor) {
        case ("output"?, let tensor?): return PruneOutcome(.output(tensor), rescale: rescale, figures: figures, notes: notes)
        case ("delta"?, let tensor?): return PruneOutcome(.prunedDelta(tensor), rescale: rescale, figures: figures, notes: notes)
        default: return PruneOutcome(.unchanged, rescale: rescale, figures: figures, notes: notes)
        }
    }

    /// `ctx`'s fields for one tensor (PluginHost adds the methods, rng and report).
    private func pushFields(_ job: PruneJob, on stack: LuaStack) {
        let state = stack.state
        lua_createtable(state, 0, 12)
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
            lua_createtable(state, 0, Int32(job.statistics.count))
            let statistics = stack.top
            for (key, tensor) in job.statistics {
                TensorUserdata.push(tensor, on: stack)
                stack.setField(key, in: statistics)
            }
            stack.setField("stats", in: table)
        }
        lua_createtable(state, 0, Int32(job.parameters.count))
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
    }

    /// The Swift functions behind `ctx:delta()`, `ctx:dare()`, `ctx:masked()`,
    /// `ctx.report()` and `ctx.note()`; they act on the tensor being pruned.
    private static func pushJobFunctions(on stack: LuaStack, plugin: @escaping () -> Plugin?) {
        let state = stack.state
        lua_createtable(state, 0, 5)
        let table = stack.top
        // Argument 1 of every job function is the id of the job its ctx was made for.
        func job(_ stack: LuaStack, _ function: String) throws -> JobState {
            let id = stack.type(1) == LUA_TNUMBER ? try stack.integer(1, function) : 0
            if let current = plugin()?.current, current.id == id { return current }
            guard let owner = plugin()?.tensorOfJob[id] else {
                throw LuaError("\(function): call it on the ctx of the tensor being pruned (as ctx:delta(), ctx.report(...))")
            }
            let now = plugin()?.current.map { "while pruning \"\($0.job.name)\"" } ?? "after its hook returned"
            throw LuaError("\(function): the ctx of tensor \"\(owner)\" was used \(now); a ctx is valid only during its own tensor's hook")
        }
        let functions: [(String, LuaFunction)] = [
            ("delta", { stack in
                let state = try job(stack, "ctx:delta")
                if state.delta == nil { state.delta = try delta(state.job.finetuned, state.job.base) }
                stack.push(state.delta!)
                return 1
            }),
            ("dare", { stack in
                let state = try job(stack, "ctx:dare"), job = state.job
                let keep = try stack.number(2, "ctx:dare"), scale = try stack.optionalNumber(3, "ctx:dare") ?? (keep > 0 ? 1 / keep : 1)
                guard keep >= 0, keep <= 1 else { throw LuaError("ctx:dare: keep probability \(keep) is outside [0, 1]") }
                state.rescale = scale
                stack.push(try dareFused(base: job.base, finetuned: job.finetuned, keep: keep, scale: Float(scale), key: job.key,
                                         output: job.output, dtype: job.outputDType))
                return 1
            }),
            ("masked", { stack in
                let state = try job(stack, "ctx:masked"), job = state.job
                let mask = try stack.tensor(2, "ctx:masked"), scale = try stack.optionalNumber(3, "ctx:masked") ?? 1
                state.rescale = scale
                stack.push(try maskedRescaleAdd(base: job.base, finetuned: job.finetuned, mask: mask, scale: Float(scale),
                                                output: job.output, dtype: job.outputDType))
                return 1
            }),
            ("report", { stack in
                let state = try job(stack, "ctx.report")
                let key = try stack.string(2, "ctx:report")
                if stack.type(3) == LUA_TNUMBER {
                    let value = try stack.number(3, "ctx:report")
                    if key == "rescale" { state.rescale = value } else { state.figures[key] = value }
                } else {
                    state.notes.append("\(key): \(stack.stringValue(3) ?? stack.typeName(3))")
                }
                return 0
            }),
            ("note", { stack in
                try job(stack, "ctx.note").notes.append(try stack.string(2, "ctx:note"))
                return 0
            }),
        ]
        for (name, body) in functions {
            stack.push(function: "ctx." + name, body)
            stack.setField(name, in: table)
        }
    }

    /// Calls `host[function]` with the arguments `push` leaves on the stack.
    private static func call(_ lua: LuaState, _ hostKey: String, _ function: String, push: (LuaStack) -> Int32) throws -> [LuaValue] {
        let state = lua.state, stack = lua.stack
        let base = stack.top
        lua_getfield(state, lopper_registryindex(), hostKey)
        lua_getfield(state, -1, function)
        lopper_remove(state, -2)
        let count = push(stack)
        lopper_reset_instructions(state)
        do {
            try stack.call(arguments: count, results: LUA_MULTRET)
        } catch {
            stack.setTop(base)
            throw error
        }
        var results: [LuaValue] = []
        if stack.top > base { for index in (base + 1)...stack.top { results.append(lua.value(at: index)) } }
        stack.setTop(base)
        return results
    }

    /// The `describe()` line format: name, type, default, min, max, choices, doc (tabs).
    private static func parseSpecs(_ text: String, path: String) throws -> [ParamSpec] {
        try text.split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 7, let type = ParamType(rawValue: fields[1]) else {
                throw PluginError("\(path): cannot read the parameter line \(line)")
            }
            var defaultValue: ParamValue?
            if !fields[2].isEmpty {
                switch type {
                case .number, .integer: defaultValue = Double(fields[2]).map(ParamValue.number)
                case .boolean: defaultValue = .boolean(fields[2] == "true")
                case .string: defaultValue = .string(fields[2])
                }
            }
            return ParamSpec(name: fields[0], type: type, defaultValue: defaultValue, min: Double(fields[3]), max: Double(fields[4]),
                             choices: fields[5].isEmpty ? nil : fields[5].split(separator: "|").map(String.init), doc: fields[6])
        }
    }
}

public struct PluginError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
