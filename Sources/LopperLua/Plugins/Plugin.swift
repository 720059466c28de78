import CLua
import CLuaShim
import Foundation
import LopperCore
import LopperPrune

/// A pruning method written in Lua (plugin contract v2): one file returning a table
/// with name, version, api, summary, typed params and one primary hook, `prune` or
/// `score` (see Docs/plugins.md). It runs in its own sandboxed state. The table is
/// read once into a `PluginManifest`; the hooks are called from here, with `ctx`
/// built here (Plugin+Context.swift).
public final class Plugin: PruneMethod {
    public let path: String
    public let manifest: PluginManifest
    public let schema: ParamSchema
    /// The Lua source it was loaded from (nil for a table typed at the REPL).
    public let source: String?
    /// Which folder of the search path it came from (`PluginCatalog.Entry.origin`), or
    /// `path` for a file named on the command line.
    public var origin = "path"
    let lua: LuaState
    /// The plugin's table in the state's registry.
    private let reference: Int32
    /// The tensor being pruned; `ctx` functions of any other tensor refuse to run.
    var current: JobState?
    private var serial = 0

    public var name: String { manifest.name }
    public var version: String { manifest.version }
    public var summary: String { manifest.summary }
    public var provenance: MethodProvenance? {
        source.map { MethodProvenance(origin: origin, path: path, source: $0) }
    }
    /// The hooks the plugin defines: `prune`, or `score` and maybe `rescale`.
    public var hooks: [String] { [manifest.hook.rawValue] + (manifest.hasRescale ? ["rescale"] : []) }

    /// What the hooks of one tensor have said so far.
    final class JobState {
        let job: PruneJob
        let serial: Int
        var rescale: Double?
        var figures: [String: Double] = [:]
        var notes: [String] = []
        /// The report's figures, when the pass that made the output measured them.
        var comparison: DeltaComparison?
        init(_ job: PruneJob, serial: Int) { self.job = job; self.serial = serial }
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
        let lua = try LuaState(sandbox: limits)
        let stack = lua.stack
        do {
            try lua.load(source, name: chunkName)
            lopper_reset_instructions(lua.state)
            try stack.call(arguments: 0, results: 1)
        } catch let error as LuaError {
            throw PluginError("plugin \(path): \(error.message)")
        }
        try self.init(lua: lua, path: path, source: source, tableAt: stack.top)
    }

    /// A plugin table defined in `lua` (the REPL's `try` with a table typed at the
    /// prompt): the value at stack index `index`. It runs in that state, unsandboxed,
    /// as the user's own code does.
    public convenience init(table index: Int32, in lua: LuaState, name: String) throws {
        lua_pushvalue(lua.state, index)
        try self.init(lua: lua, path: name, source: nil, tableAt: lua.stack.top)
    }

    /// Reads and keeps the plugin table at `index` (popped).
    private init(lua: LuaState, path: String, source: String?, tableAt index: Int32) throws {
        self.path = path
        self.source = source
        self.lua = lua
        let stack = lua.stack
        do {
            manifest = try PluginManifest.read(stack, at: index)
        } catch let error as PluginError {
            stack.setTop(index - 1)
            throw PluginError("plugin \(path): \(error.description)")
        }
        schema = ParamSchema(method: manifest.name, specs: manifest.specs)
        lua_pushvalue(lua.state, index)
        reference = luaL_ref(lua.state, lopper_registryindex())
        stack.setTop(index - 1)
    }

    // MARK: - Pruning

    public func prune(_ job: PruneJob) throws -> PruneOutcome {
        let rate = job.parameters["rate"]?.number ?? 0, scale = job.parameters["layer_scale"]?.number ?? 1
        if rate == 0 {   // every method is the identity at p = 0: only the host's scale is left
            if scale == 1 { return PruneOutcome(.unchanged) }
            let delta = try scaled(try LazyTensor.delta(base: job.base, finetuned: job.finetuned), by: scale)
            let (output, comparison) = try delta.finish(base: job.base, output: job.output, dtype: job.outputDType,
                                                        measuredAgainst: job.finetuned)
            return PruneOutcome(.output(output), figures: ["layer_scale": scale], comparison: comparison)
        }
        return try withHook(job) { state, result, ctx, delta in
            let outcome: PruneOutcome.Result
            switch manifest.hook {
            case .prune: outcome = try prunedDelta(at: result, job, state: state)
            case .score: outcome = try selected(scoresAt: result, job, rate: rate, state: state, ctx: ctx, delta: delta)
            }
            if scale != 1 { state.figures["layer_scale"] = scale }
            return PruneOutcome(outcome, rescale: state.rescale, figures: state.figures, notes: state.notes,
                                comparison: state.comparison)
        }
    }

    /// The importance the `score` hook gives `job`'s entries, for the host's model-wide pass.
    public func scores(_ job: PruneJob) throws -> Tensor {
        guard manifest.hook == .score else { throw PluginError("plugin \(name) has a prune hook: granularity=model needs a score hook") }
        return try withHook(job) { _, result, _, _ in try scoreTensor(at: result, job) }
    }

    /// Calls the primary hook on `job` with a fresh ctx and the lazy delta, then `body` with
    /// the job's state and the stack indices of the result, ctx and delta; errors name the tensor.
    private func withHook<Result>(_ job: PruneJob, _ body: (JobState, Int32, Int32, Int32) throws -> Result) throws -> Result {
        serial += 1
        let state = JobState(job, serial: serial)
        current = state
        let stack = lua.stack, base = stack.top
        defer {
            current = nil
            stack.setTop(base)
            if lua.isSandboxed { lua.collectGarbage() }
        }
        do {
            let delta = try LazyTensor.delta(base: job.base, finetuned: job.finetuned)
            pushContext(for: state, on: stack)
            LazyUserdata.push(delta, on: stack)
            let ctx = base + 1, deltaIndex = base + 2
            return try body(state, try call(manifest.hook.rawValue, deltaIndex, ctx), ctx, deltaIndex)
        } catch let error as LuaError {
            throw PluginError("plugin \(name) (\(path)), tensor \"\(job.name)\": \(error.message)")
        } catch let error as PluginError {
            throw PluginError("plugin \(name) (\(path)), tensor \"\(job.name)\": \(error.description)")
        } catch let error as TensorError {
            throw PluginError("plugin \(name) (\(path)), tensor \"\(job.name)\": \(error)")
        }
    }

    /// Calls hook `name` of the plugin table with copies of the values at `arguments`;
    /// returns the stack index of its one result.
    private func call(_ name: String, _ arguments: Int32...) throws -> Int32 {
        let state = lua.state, stack = lua.stack
        lua_rawgeti(state, lopper_registryindex(), lua_Integer(reference))
        stack.push(name)
        lua_rawget(state, -2)
        lopper_remove(state, -2)
        for index in arguments { lua_pushvalue(state, index) }
        lopper_reset_instructions(state)
        try stack.call(arguments: Int32(arguments.count), results: 1)
        return stack.top
    }

    /// What `prune` returned: the pruned delta, lazy (fused with the base here) or not.
    private func prunedDelta(at index: Int32, _ job: PruneJob, state: JobState) throws -> PruneOutcome.Result {
        let stack = lua.stack
        let scale = job.parameters["layer_scale"]?.number ?? 1
        if stack.isNoneOrNil(index) {
            if scale == 1 { return .unchanged }
            let delta = try scaled(try LazyTensor.delta(base: job.base, finetuned: job.finetuned), by: scale)
            let (output, comparison) = try delta.finish(base: job.base, output: job.output, dtype: job.outputDType,
                                                        measuredAgainst: job.finetuned)
            state.comparison = comparison
            return .output(output)
        }
        if let lazy = LazyUserdata.lazy(at: index, on: stack) {
            guard lazy.shape == job.base.shape else {
                throw PluginError("prune returned shape \(lazy.shape.shapeText) for a tensor of shape \(job.base.shape.shapeText)")
            }
            if state.rescale == nil { state.rescale = lazy.dareRescale(base: job.base) }
            let (output, comparison) = try scaled(lazy, by: scale).finish(base: job.base, output: job.output, dtype: job.outputDType,
                                                                          measuredAgainst: job.finetuned)
            state.comparison = comparison
            return .output(output)
        }
        guard let tensor = TensorUserdata.tensor(at: index, on: stack) else {
            throw PluginError("prune must return the pruned delta (a tensor) or nil, got \(stack.typeName(index))")
        }
        return .prunedDelta(scale == 1 ? tensor : try LopperCore.scale(tensor, Float(scale)))
    }


    /// The host's half of a `score` plugin: keep the top `1 - rate` of the scores at
    /// the granularity asked, rescale as `rescale(ctx, delta, mask)` or the `rescale`
    /// parameter says, in one fused pass.
    private func selected(scoresAt index: Int32, _ job: PruneJob, rate: Double, state: JobState,
                          ctx: Int32, delta: Int32) throws -> PruneOutcome.Result {
        let stack = lua.stack, scores = try scoreTensor(at: index, job)
        let parameters = job.parameters
        func integer(_ key: String) -> Int { parameters[key]?.number.flatMap { Int(exactly: $0) } ?? 0 }
        guard let granularity = parameters["granularity"].flatMap({ Granularity(rawValue: $0.description) }),
              let rule = parameters["rescale"].flatMap({ RescaleRule(rawValue: $0.description) }) else {
            throw PluginError("granularity or rescale has no value")
        }
        let mask: Tensor
        if granularity == .model, let selection = job.modelSelection {
            mask = try selection.mask(scores, name: job.name)
            state.figures["model_threshold"] = Double(selection.threshold.value)
        } else {
            mask = try keepTop(scores, keep: 1 - rate, granularity: granularity, n: integer("n"), m: integer("m"))
        }
        let scale: Double
        if manifest.hasRescale {
            TensorUserdata.push(mask, on: stack)
            let result = try call("rescale", ctx, delta, stack.top)
            guard stack.type(result) == LUA_TNUMBER, let value = Double(exactly: try stack.number(result, "rescale")), value.isFinite else {
                throw PluginError("rescale must return a finite number, got \(stack.typeName(result))")
            }
            scale = value
        } else {
            let q = parameters["q"]?.number
            let values = rule == .l1 ? try LopperCore.delta(job.finetuned, job.base) : nil
            scale = try rescaleFactor(rule, rate: rate, q: q, delta: values, mask: mask)
        }
        state.rescale = scale
        let factor = scale * (parameters["layer_scale"]?.number ?? 1)
        let (output, comparison) = try fusedMaskMeasured(base: job.base, finetuned: job.finetuned, mask: mask, scale: Float(factor),
                                                         output: job.output, dtype: job.outputDType)
        state.comparison = comparison
        return .output(output)
    }
}

extension Plugin {
    /// The `score` hook's result at `index`, checked against the job.
    fileprivate func scoreTensor(at index: Int32, _ job: PruneJob) throws -> Tensor {
        let stack = lua.stack
        guard stack.isTensor(index) else { throw PluginError("score must return a tensor of importance, got \(stack.typeName(index))") }
        let scores = try stack.tensor(index, "score")
        guard scores.shape == job.base.shape, scores.dtype.isComputable else {
            throw PluginError("score returned a \(scores.dtype.name) tensor of shape \(scores.shape.shapeText) for a tensor of shape \(job.base.shape.shapeText)")
        }
        return scores
    }
}

public struct PluginError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
