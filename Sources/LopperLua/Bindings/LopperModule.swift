import CLua
import CLuaShim
import LopperCore

/// The version `lopper.version` reports.
public let lopperLuaVersion = "0.1.0"

/// The `lopper` module table and the global `help`.
enum LopperModule {
    static func install(in lua: LuaState) {
        let stack = lua.stack
        let state = stack.state
        lua_createtable(state, 0, 16)
        let table = stack.top
        stack.push(lopperLuaVersion)
        stack.setField("version", in: table)
        var functions = tensorFunctions + PruningFunctions.functions
        if !lua.isSandboxed { functions += CheckpointFunctions.functions + ModelFunctions.functions + SearchFunctions.functions }
        for (name, body) in functions {
            stack.push(function: "lopper." + name, body)
            LuaDocs.remember(functionAt: -1, as: "lopper." + name, on: stack)
            stack.setField(name, in: table)
        }
        if !lua.isSandboxed {
            // `require "lopper"` finds the same table.
            if lua_getfield(state, lopper_registryindex(), LUA_LOADED_TABLE) == LUA_TTABLE {
                lua_pushvalue(state, table)
                lua_setfield(state, -2, "lopper")
            }
            stack.pop()
        }
        lua_setglobal(state, "lopper")
        stack.push(function: "help", LuaDocs.help)
        LuaDocs.remember(functionAt: -1, as: "help", on: stack)
        lua_setglobal(state, "help")
        CheckpointFunctions.registerMetatables(in: stack)
        ModelFunctions.registerMetatable(in: stack)
    }

    /// Functions that only make tensors from tensors or numbers (safe in plugins).
    static let tensorFunctions: [(String, LuaFunction)] = [
        ("zeros", { stack in
            let shape = try stack.shape(1, "zeros")
            let dtype = try stack.optionalDType(2, "zeros") ?? .f32
            try stack.checkAllocation(shape, dtype, "zeros")
            stack.push(try Tensor(zeros: shape, dtype: dtype))
            return 1
        }),
        ("ones", { stack in
            let shape = try stack.shape(1, "ones")
            let dtype = try stack.optionalDType(2, "ones") ?? .f32
            try stack.checkAllocation(shape, .f32, "ones")
            stack.push(try TensorMethods.filled(shape, 1, dtype))
            return 1
        }),
        ("full", { stack in
            let shape = try stack.shape(1, "full")
            let value = try stack.number(2, "full")
            let dtype = try stack.optionalDType(3, "full") ?? .f32
            try stack.checkAllocation(shape, .f32, "full")
            stack.push(try TensorMethods.filled(shape, Float(value), dtype))
            return 1
        }),
        ("rand", { stack in
            let shape = try stack.shape(1, "rand")
            let key = try TensorMethods.randomKey(stack, 2, "rand")
            try stack.checkAllocation(shape, .f32, "rand")
            stack.push(try uniform(shape, key: key))
            return 1
        }),
        ("bernoulli", { stack in
            let shape = try stack.shape(1, "bernoulli")
            let keep = try stack.number(2, "bernoulli")
            let key = try TensorMethods.randomKey(stack, 3, "bernoulli")
            guard keep >= 0, keep <= 1 else { throw LuaError("bernoulli: keep probability \(keep) is outside [0, 1]") }
            try stack.checkAllocation(shape, .bool, "bernoulli")
            stack.push(try bernoulliMask(shape, keep: keep, key: key))
            return 1
        }),
        ("from_table", { stack in
            guard stack.type(1) == LUA_TTABLE else {
                throw LuaError.badArgument(1, "from_table", "table of numbers", got: stack.typeName(1))
            }
            let dtype = try stack.optionalDType(2, "from_table") ?? .f32
            let (shape, values) = try nestedNumbers(stack, at: 1)
            guard dtype.isComputable || dtype == .bool else { throw TensorError.unsupportedDType("from_table", dtype) }
            stack.push(Tensor(values, shape: shape, dtype: dtype))
            return 1
        }),
        ("where", { stack in
            let mask = try stack.tensor(1, "where")
            let a = try stack.tensor(2, "where")
            if stack.type(3) == LUA_TNUMBER {
                stack.push(try select(mask, a, Float(try stack.number(3, "where"))))
            } else {
                stack.push(try select(mask, a, try stack.tensor(3, "where")))
            }
            return 1
        }),
    ]

    /// Shape and row-major values of a rectangular nested table of numbers.
    static func nestedNumbers(_ stack: LuaStack, at index: Int32) throws -> ([Int], [Float]) {
        let state = stack.state
        let root = lua_absindex(state, index)
        // The shape follows the first element down; everything else must match it.
        var shape: [Int] = []
        lua_pushvalue(state, root)
        while stack.type(-1) == LUA_TTABLE {
            guard shape.count < 32 else { stack.pop(); throw LuaError("from_table: nested deeper than 32 levels") }
            shape.append(Int(lua_rawlen(state, -1)))
            lua_rawgeti(state, -1, 1)
            lopper_remove(state, -2)
        }
        stack.pop()
        let count = try Tensor.elementCount(shape)
        guard count <= 1 << 26 else { throw LuaError("from_table: \(count) values are too many for a table (use zeros/full/rand)") }
        var values: [Float] = []
        values.reserveCapacity(count)

        func visit(_ depth: Int) throws {
            let length = Int(lua_rawlen(state, -1))
            guard length == shape[depth] else {
                throw LuaError("from_table: ragged table: a level-\(depth + 1) table has \(length) entries, expected \(shape[depth])")
            }
            for position in stride(from: 1, through: length, by: 1) {
                lua_rawgeti(state, -1, lua_Integer(position))
                defer { stack.pop() }
                if depth + 1 < shape.count {
                    guard stack.type(-1) == LUA_TTABLE else {
                        throw LuaError("from_table: ragged table: expected a table at depth \(depth + 2), got \(stack.typeName(-1))")
                    }
                    try visit(depth + 1)
                } else {
                    guard stack.type(-1) == LUA_TNUMBER else {
                        throw LuaError("from_table: expected numbers, got a \(stack.typeName(-1)) value")
                    }
                    var isNumber: Int32 = 0
                    values.append(Float(lopper_tonumber(state, -1, &isNumber)))
                }
            }
        }
        lua_pushvalue(state, root)
        defer { stack.pop() }
        if shape.isEmpty || shape == [0] { return ([0], []) }
        try visit(0)
        return (shape, values)
    }
}
