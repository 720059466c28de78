import CLua
import CLuaShim
import Foundation
import LopperCore

/// A custom AdamR pull for `lopper finetune --pull FILE.lua`: the file returns a function
/// `function(delta, ctx) return D end`, called for every parameter at every step with
/// `delta = W - W0` (lazy, as a plugin's delta) and `ctx = {name, layer, step}`; the
/// optimizer then takes `W -= lr lambda / vbar D`. `return delta` is AdamR-L2,
/// `return delta:sign()` AdamR-L1. Sandboxed as plugins are.
public final class PullRule {
    public let path: String
    let lua: LuaState
    private let reference: Int32

    public init(path: String, limits: LuaState.Limits = .init()) throws {
        guard let data = FileManager.default.contents(atPath: path), let source = String(data: data, encoding: .utf8) else {
            throw PluginError("\(path): cannot read the pull rule as UTF-8 text")
        }
        self.path = path
        lua = try LuaState(sandbox: limits)
        let stack = lua.stack
        do {
            try lua.load(source, name: "@" + URL(fileURLWithPath: path).lastPathComponent)
            lopper_reset_instructions(lua.state)
            try stack.call(arguments: 0, results: 1)
        } catch let error as LuaError {
            throw PluginError("pull rule \(path): \(error.message)")
        }
        guard stack.type(stack.top) == LUA_TFUNCTION else {
            throw PluginError("pull rule \(path): the file must return a function(delta, ctx), not a \(stack.typeName(stack.top))")
        }
        reference = luaL_ref(lua.state, lopper_registryindex())
    }

    /// D for one parameter: F32 of the parameter's shape.
    public func direction(name: String, layer: Int?, step: Int, weights: Tensor, origin: Tensor) throws -> Tensor {
        let state = lua.state, stack = lua.stack, base = stack.top
        defer { stack.setTop(base); lua.collectGarbage() }
        do {
            lua_rawgeti(state, lopper_registryindex(), lua_Integer(reference))
            LazyUserdata.push(try LazyTensor.delta(base: origin, finetuned: weights), on: stack)
            lua_createtable(state, 0, 3)
            let table = stack.top
            stack.push(name); stack.setField("name", in: table)
            if let layer { stack.push(layer); stack.setField("layer", in: table) }
            stack.push(step); stack.setField("step", in: table)
            lopper_reset_instructions(state)
            try stack.call(arguments: 2, results: 1)
            let result = stack.top
            let value: Tensor
            if let lazy = LazyUserdata.lazy(at: result, on: stack) {
                value = try lazy.evaluate()
            } else if let tensor = TensorUserdata.tensor(at: result, on: stack) {
                value = tensor
            } else {
                throw PluginError("must return a tensor (the direction D), got \(stack.typeName(result))")
            }
            guard value.shape == weights.shape, value.dtype.isComputable else {
                throw PluginError("returned \(value.dtype.name) \(value.shape.shapeText) for a tensor of shape \(weights.shape.shapeText)")
            }
            return value.dtype == .f32 ? value : try value.converted(to: .f32)
        } catch let error as LuaError {
            throw PluginError("pull rule \(path), tensor \"\(name)\": \(error.message)")
        } catch let error as PluginError {
            throw PluginError("pull rule \(path), tensor \"\(name)\": \(error.description)")
        } catch let error as TensorError {
            throw PluginError("pull rule \(path), tensor \"\(name)\": \(error)")
        }
    }
}
