import CLua
import CLuaShim
import Foundation
import LopperCore
import LopperIO
import LopperPrune

/// The REPL's plugin helpers: `plugins` (what is installed), `try(plugin, name [, params
/// [, d]])` (run a method on one tensor of the loaded pair and print its report) and
/// `reload()` (forget loaded plugin files, so edits take effect).
final class ReplPlugins {
    private var loaded: [String: Plugin] = [:]
    private let write: (String) -> Void

    init(write: @escaping (String) -> Void) { self.write = write }

    func install(in lua: LuaState) {
        lua.register("try") { [unowned self, unowned lua] stack in try self.tryPlugin(stack, lua) }
        lua.register("reload") { [unowned self] stack in
            let count = self.loaded.count
            self.loaded = [:]
            self.setCatalog(on: stack)
            self.write("reload: forgot \(count) loaded plugin(s); the next try() reads the files again\n")
            return 0
        }
        let stack = lua.stack
        setCatalog(on: stack)
        for name in ["try", "reload"] {
            stack.pushGlobal(name)
            LuaDocs.remember(functionAt: -1, as: name, on: stack)
            stack.pop()
        }
    }

    /// Sets the global `plugins`: method name -> file, from the plugin search path.
    private func setCatalog(on stack: LuaStack) {
        let entries = PluginCatalog.all()
        lua_createtable(stack.state, 0, Int32(entries.count))
        let table = stack.top
        // The first folder's newest version wins (entries come in search order, newest first).
        for entry in entries.reversed() {
            stack.push(entry.path)
            stack.setField(entry.name, in: table)
        }
        lopper_pushglobaltable(stack.state)
        stack.pushCopy(of: table)
        stack.setField("plugins", in: -2)
        stack.pop(2)
    }

    private func plugin(_ stack: LuaStack, _ lua: LuaState) throws -> Plugin {
        if stack.type(1) == LUA_TTABLE {
            return try Plugin(table: 1, in: lua, name: "(table)")
        }
        let name = try stack.string(1, "try")
        let path = try PluginCatalog.resolve(name)
        if let cached = loaded[path] { return cached }
        let plugin = try Plugin(path: path)
        loaded[path] = plugin
        return plugin
    }

    /// The base and fine-tuned tensors of `name`: from the delta given as the fourth
    /// argument, or the global `delta`, or the globals `base` and `ft`.
    private func pair(_ stack: LuaStack, _ name: String) throws -> (Tensor, Tensor, Int) {
        var base: LuaCheckpoint?, finetuned: LuaCheckpoint?
        if let delta = DeltaUserdata.object(stack, 4) {
            (base, finetuned) = (delta.base, delta.finetuned)
        } else {
            stack.pushGlobal("delta")
            if let delta = DeltaUserdata.object(stack, -1) { (base, finetuned) = (delta.base, delta.finetuned) }
            stack.pop()
            if base == nil {
                stack.pushGlobal("base"); base = CheckpointFunctions.object(stack, -1); stack.pop()
                stack.pushGlobal("ft"); finetuned = CheckpointFunctions.object(stack, -1); stack.pop()
            }
        }
        guard let base, let finetuned else {
            throw LuaError("try: no pair loaded: start with lopper repl --base DIR --finetuned DIR, set delta = lopper.delta(base, ft), or pass a delta as the fourth argument")
        }
        return (try base.tensor(name, "try"), try finetuned.tensor(name, "try"), try layerCount(of: finetuned.checkpoint.names))
    }

    private func tryPlugin(_ stack: LuaStack, _ lua: LuaState) throws -> Int32 {
        let plugin = try plugin(stack, lua)
        let name = try stack.string(2, "try")
        var settings: [Setting] = []
        var seed: UInt64 = 0
        if !stack.isNoneOrNil(3) {
            guard stack.type(3) == LUA_TTABLE else { throw LuaError.badArgument(3, "try", "table of parameters", got: stack.typeName(3)) }
            stack.pushNil()
            while lua_next(stack.state, 3) != 0 {
                defer { stack.pop() }
                guard let key = stack.type(-2) == LUA_TSTRING ? stack.stringValue(-2) : nil else {
                    throw LuaError("try: parameter names must be strings")
                }
                if key == "seed" { seed = try Self.seed(stack, -1); continue }
                settings.append(Setting(key: key, text: try stack.protectedString(-1)))
            }
        }
        try plugin.schema.validate(settings)
        let (base, finetuned, layerCount) = try pair(stack, name)
        guard base.shape == finetuned.shape else {
            throw LuaError("try: tensor \"\(name)\": shape \(finetuned.shape.shapeText) vs base \(base.shape.shapeText)")
        }
        let layer = layerIndex(of: name)
        let parameters = try plugin.schema.resolve(settings, name: name, layer: layer, layerCount: layerCount)
        let job = PruneJob(name: name, layerCount: layerCount, base: base, finetuned: finetuned,
                           parameters: parameters, seed: seed, output: .delta, outputDType: .f32)
        let (pruned, report) = try plugin.run(job)
        write(Self.describe(report, method: plugin, seed: seed) + "\n")
        stack.push(pruned)
        return 1
    }

    /// `seed` of try's parameters: a non-negative integer (a number or its text).
    private static func seed(_ stack: LuaStack, _ index: Int32) throws -> UInt64 {
        var isInteger: Int32 = 0
        let value = lopper_tointeger(stack.state, index, &isInteger)
        guard stack.type(index) == LUA_TNUMBER || stack.type(index) == LUA_TSTRING, isInteger != 0, value >= 0 else {
            let shown = stack.type(index) == LUA_TSTRING ? "\"\(stack.stringValue(index) ?? "")\"" :
                stack.type(index) == LUA_TNUMBER ? "\(lopper_tonumber(stack.state, index, &isInteger))" : "a \(stack.typeName(index)) value"
            throw LuaError("try: seed must be a non-negative integer, got \(shown)")
        }
        return UInt64(value)
    }

    /// The report of one tensor as a short two-column table.
    static func describe(_ report: TensorReport, method: Plugin, seed: UInt64) -> String {
        func number(_ value: Double?) -> String { value.map(compactNumber) ?? "-" }
        var rows: [[String]] = [
            ["kept", report.keptFraction.map { String(format: "%.3f%%", $0 * 100) } ?? "-"],
            ["rescale", number(report.rescale)],
            ["delta mean", number(report.deltaMeanBefore) + " -> " + number(report.deltaMeanAfter)],
            ["delta std", number(report.deltaStdBefore) + " -> " + number(report.deltaStdAfter)],
            ["rel L2 error", number(report.relativeL2Error)],
        ]
        for (key, value) in report.figures.sorted(by: { $0.key < $1.key }) { rows.append([key, number(value)]) }
        for note in report.notes { rows.append(["note", note]) }
        let parameters = (report.parameters ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return (["\(method.name) \(method.version) on \(report.name) \(report.shape.shapeText), seed \(seed): \(parameters)"]
                + renderTable(header: ["figure", "value"], rows: rows)).joined(separator: "\n")
    }
}
