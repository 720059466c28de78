import CLua
import CLuaShim
import LopperCore
import LopperPrune

/// `lopper plugin test`: runs a plugin's own tests (`tests.lua`) in a fresh sandbox
/// with the same limits as the plugin. The test file registers cases with
/// `test(name, function() ... end)` and checks with `expect_near(actual, expected, tol)`
/// or `assert`; `plugin.prune(delta, params, options)` runs the plugin on a tensor
/// exactly as `lopper prune` would (options: `seed`, `name`, `base`, `layer_count`,
/// `stats`) and returns the pruned delta D' (F32) and `{ rescale =, kept = }`.
public enum PluginSelfTest {
    public struct Outcome: Sendable {
        public var name: String
        /// nil when the case passed.
        public var failure: String?
    }

    public static func run(_ tests: String, file: String, plugin: Plugin, limits: LuaState.Limits = .init()) throws -> [Outcome] {
        let lua = try LuaState(sandbox: limits)
        defer { lua.close() }
        let stack = lua.stack
        var outcomes: [Outcome] = []
        do {
            try lua.load(EmbeddedLua.pluginTests, name: "=lopper.plugin_tests")
            stack.push(function: "report") { stack in
                let name = try stack.string(1, "report"), message = try stack.string(2, "report")
                outcomes.append(Outcome(name: name, failure: message.isEmpty ? nil : message))
                return 0
            }
            try stack.call(arguments: 1, results: 1)
            let runner = stack.top
            pushPluginTable(plugin, on: stack)
            lua_setglobal(lua.state, "plugin")
            try lua.load(tests, name: "@" + file)
            try stack.call(arguments: 0, results: 0)
            lua_pushvalue(lua.state, runner)
            lopper_reset_instructions(lua.state)
            try stack.call(arguments: 0, results: 1)
        } catch let error as LuaError {
            throw PluginError("tests of plugin \(plugin.name) (\(file)): \(error.message)")
        }
        return outcomes
    }

    /// The list of numbers on top of the stack (a schedule such as `{0.9, 0.99}`).
    private static func numbers(_ stack: LuaStack) throws -> [Double] {
        var values: [Double] = []
        let length = lua_rawlen(stack.state, -1)
        guard length <= 4096 else { throw LuaError("plugin.prune: a schedule has at most 4096 numbers") }
        for index in 0..<Int(length) {
            lua_rawgeti(stack.state, -1, lua_Integer(index + 1))
            defer { stack.pop() }
            values.append(try stack.number(-1, "plugin.prune"))
        }
        return values
    }

    private static func pushPluginTable(_ plugin: Plugin, on stack: LuaStack) {
        lua_createtable(stack.state, 0, 3)
        let table = stack.top
        stack.push(plugin.name); stack.setField("name", in: table)
        stack.push(plugin.version); stack.setField("version", in: table)
        stack.push(function: "plugin.prune") { [weak plugin] stack in
            guard let plugin else { throw LuaError("plugin.prune: the plugin is gone") }
            let delta = try stack.tensor(1, "plugin.prune")
            var settings: [Setting] = []
            if !stack.isNoneOrNil(2) {
                guard stack.type(2) == LUA_TTABLE else { throw LuaError.badArgument(2, "plugin.prune", "table of parameters", got: stack.typeName(2)) }
                for (key, type) in try RawTable(stack, 2).entries {
                    let text: String = try RawTable(unchecked: stack, 2).push(key) {
                        type == LUA_TTABLE ? "[" + (try numbers(stack)).map(ParamValue.format).joined(separator: ",") + "]"
                            : try stack.protectedString(-1)
                    }
                    settings.append(Setting(key: key, text: text))
                }
            }
            let options = stack.isNoneOrNil(3) ? nil : try RawTable(stack, 3)
            let name = options?.string("name") ?? "model.layers.0.mlp.up_proj.weight"
            let seed = options?.number("seed").flatMap { UInt64(exactly: $0) } ?? 0
            let layerCount = options?.number("layer_count").flatMap { Int(exactly: $0) } ?? 2
            let delta32 = try delta.converted(to: .f32)
            let base = try options?.push("base") { stack.isTensor(-1) ? try stack.tensor(-1, "plugin.prune") : nil }
                ?? Tensor(zeros: delta.shape, dtype: .f32)
            guard base.shape == delta.shape else { throw LuaError("plugin.prune: base has shape \(base.shape.shapeText), delta \(delta.shape.shapeText)") }
            var statistics: [String: Tensor] = [:]
            if let index = try options?.table("stats") {
                for (key, _) in try RawTable(stack, index).entries {
                    statistics[key] = try RawTable(unchecked: stack, index).push(key) { try stack.tensor(-1, "plugin.prune") }
                }
            }
            let finetuned = try add(try base.converted(to: .f32), delta32)
            try plugin.schema.validate(settings)
            let parameters = try plugin.schema.resolve(settings, name: name, layer: layerIndex(of: name), layerCount: layerCount)
            var job = PruneJob(name: name, layerCount: layerCount, base: try base.converted(to: .f32), finetuned: finetuned,
                               parameters: parameters, seed: seed, output: .delta, outputDType: .f32)
            job.statistics = statistics
            let (pruned, report) = try plugin.run(job)
            stack.push(pruned)
            lua_createtable(stack.state, 0, 2)
            if let rescale = report.rescale { stack.push(rescale); stack.setField("rescale", in: -2) }
            if let kept = report.keptFraction { stack.push(kept); stack.setField("kept", in: -2) }
            return 2
        }
        stack.setField("prune", in: table)
    }
}
