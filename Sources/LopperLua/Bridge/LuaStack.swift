import CLua
import CLuaShim
import LopperCore

/// A borrowed view of a Lua stack, handed to Swift functions called from Lua.
///
/// Every check here reports a bad argument by throwing (never by raising a Lua error:
/// a longjmp must not cross a Swift frame); the trampoline raises after return. For
/// the same reason Swift reads tables raw (`field`, `pushGlobal`, `lua_rawgeti`,
/// `lua_rawlen`, `lua_next`) and never calls an API function that may run a
/// metamethod (`lua_getfield`, `lua_gettable`, `luaL_tolstring`, `lua_len`,
/// `lua_compare`, `lua_concat`) on a value a script made, except through a
/// protected C helper (`protectedString`).
public struct LuaStack {
    public let state: OpaquePointer

    public init(_ state: OpaquePointer) { self.state = state }

    public var top: Int32 { lua_gettop(state) }
    public func setTop(_ index: Int32) { lua_settop(state, index) }
    public func pop(_ count: Int32 = 1) { lopper_pop(state, count) }
    public func type(_ index: Int32) -> Int32 { lua_type(state, index) }
    public func typeName(_ index: Int32) -> String {
        index > top && index > 0 ? "no value" : String(cString: lopper_typename_at(state, index))
    }
    public func isNoneOrNil(_ index: Int32) -> Bool { lopper_isnoneornil(state, index) != 0 }

    // MARK: - Reading arguments

    public func number(_ index: Int32, _ function: String) throws -> Double {
        var isNumber: Int32 = 0
        let value = lopper_tonumber(state, index, &isNumber)
        guard isNumber != 0, type(index) == LUA_TNUMBER else {
            throw LuaError.badArgument(index, function, "number", got: typeName(index))
        }
        return value
    }

    public func optionalNumber(_ index: Int32, _ function: String) throws -> Double? {
        isNoneOrNil(index) ? nil : try number(index, function)
    }

    public func integer(_ index: Int32, _ function: String) throws -> Int {
        var isInteger: Int32 = 0
        let value = lopper_tointeger(state, index, &isInteger)
        guard type(index) == LUA_TNUMBER else {
            throw LuaError.badArgument(index, function, "integer", got: typeName(index))
        }
        guard isInteger != 0 else {
            throw LuaError.badArgument(index, function, "integer", got: "a number with a fraction")
        }
        return Int(value)
    }

    public func optionalInteger(_ index: Int32, _ function: String) throws -> Int? {
        isNoneOrNil(index) ? nil : try integer(index, function)
    }

    public func string(_ index: Int32, _ function: String) throws -> String {
        guard type(index) == LUA_TSTRING, let text = stringValue(index) else {
            throw LuaError.badArgument(index, function, "string", got: typeName(index))
        }
        return text
    }

    public func optionalString(_ index: Int32, _ function: String) throws -> String? {
        isNoneOrNil(index) ? nil : try string(index, function)
    }

    public func boolean(_ index: Int32) -> Bool { lua_toboolean(state, index) != 0 }

    /// The string at `index` (strings only: numbers are not converted in place).
    public func stringValue(_ index: Int32) -> String? {
        guard type(index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    public func dtype(_ index: Int32, _ function: String) throws -> DType {
        let name = try string(index, function)
        guard let dtype = DType(parsing: name) else {
            throw LuaError("\(function.split(separator: ":").last ?? ""): unknown dtype '\(name)' (use F32, F16, BF16, F64, BOOL, ...)")
        }
        return dtype
    }

    public func optionalDType(_ index: Int32, _ function: String) throws -> DType? {
        isNoneOrNil(index) ? nil : try dtype(index, function)
    }

    /// A shape: a table of non-negative integers, `{4096, 11008}`, or a single integer.
    public func shape(_ index: Int32, _ function: String) throws -> [Int] {
        if type(index) == LUA_TNUMBER { return [try integer(index, function)] }
        guard type(index) == LUA_TTABLE else {
            throw LuaError.badArgument(index, function, "shape (table of integers)", got: typeName(index))
        }
        let length = Int(lua_rawlen(state, index))
        var shape: [Int] = []
        shape.reserveCapacity(length)
        for position in 0..<length {
            lua_rawgeti(state, index, lua_Integer(position + 1))
            defer { pop() }
            var isInteger: Int32 = 0
            let value = lopper_tointeger(state, -1, &isInteger)
            guard isInteger != 0, type(-1) == LUA_TNUMBER, value >= 0 else {
                throw LuaError("\(function.split(separator: ":").last ?? ""): shape entry \(position + 1) must be a non-negative integer")
            }
            shape.append(Int(value))
        }
        return shape
    }

    /// Pushes field `key` of the table at `index` without metamethods; returns its type.
    @discardableResult
    public func field(_ key: String, of index: Int32) -> Int32 {
        let table = lua_absindex(state, index)
        push(key)
        return lua_rawget(state, table)
    }

    /// Pushes the global `name` without metamethods; returns its type.
    @discardableResult
    public func pushGlobal(_ name: String) -> Int32 {
        lopper_pushglobaltable(state)
        let type = field(name, of: -1)
        lopper_remove(state, -2)
        return type
    }

    /// `tostring(value)` of the value at `index` (which may run its `__tostring`, in
    /// a protected call: its error or yield is thrown here).
    public func protectedString(_ index: Int32) throws -> String {
        let status = lopper_tostring_protected(state, index)
        defer { pop() }
        guard status == LUA_OK else { throw errorOnTop(status: status) }
        return stringValue(-1) ?? ""
    }

    /// A full garbage collection in a protected call, with the limits in force.
    public func collectGarbage() {
        if lopper_collect(state) != LUA_OK { pop() }
    }

    /// The Swift object in a userdata with metatable `metatable`, or nil.
    public func object<T: AnyObject>(_ index: Int32, metatable: String, as type: T.Type) -> T? {
        guard let pointer = lopper_to_object(state, index, metatable) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue() as? T
    }

    /// The object at `index`, or a bad-argument error of `function` naming `kind` ("checkpoint").
    public func object<T: AnyObject>(_ index: Int32, metatable: String, as type: T.Type, _ function: String, kind: String) throws -> T {
        guard let object = object(index, metatable: metatable, as: type) else {
            throw LuaError.badArgument(index, function, kind, got: typeName(index))
        }
        return object
    }

    // MARK: - Pushing results

    public func pushNil() { lua_pushnil(state) }
    /// Pushes a copy of the value at `index`.
    public func pushCopy(of index: Int32) { lua_pushvalue(state, index) }
    public func push(_ value: Double) { lua_pushnumber(state, value) }
    public func push(_ value: Float) { lua_pushnumber(state, Double(value)) }
    public func push(_ value: Int) { lua_pushinteger(state, lua_Integer(value)) }
    public func push(_ value: Bool) { lua_pushboolean(state, value ? 1 : 0) }
    public func push(_ value: String) {
        var text = value
        text.withUTF8 { bytes in
            _ = bytes.withMemoryRebound(to: CChar.self) { lua_pushlstring(state, $0.baseAddress, $0.count) }
        }
    }

    /// Pushes `object` as a userdata with `metatable`; Lua holds a retained reference
    /// that its `__gc` releases. `externalBytes` is memory the object holds outside Lua.
    public func pushObject(_ object: AnyObject, metatable: String, externalBytes: Int = 0) {
        let retained = Unmanaged<AnyObject>.passRetained(object).toOpaque()
        lopper_push_object(state, retained, max(0, externalBytes), metatable)
    }

    /// Pushes an array of integers as a sequence.
    public func push(integers values: [Int]) {
        lua_createtable(state, Int32(values.count), 0)
        for (position, value) in values.enumerated() {
            lua_pushinteger(state, lua_Integer(value))
            lua_rawseti(state, -2, lua_Integer(position + 1))
        }
    }

    /// Pushes an array of strings as a sequence.
    public func push(strings values: [String]) {
        lua_createtable(state, Int32(values.count), 0)
        for (position, value) in values.enumerated() {
            push(value)
            lua_rawseti(state, -2, lua_Integer(position + 1))
        }
    }

    /// Sets `table[key] = value on top` (raw) for the table at `table`, popping the value.
    public func setField(_ key: String, in table: Int32) {
        let absolute = lua_absindex(state, table)
        push(key)
        lua_rotate(state, -2, 1)
        lua_rawset(state, absolute)
    }

    /// Pushes a Swift function as a Lua function.
    public func push(function name: String, _ body: @escaping LuaFunction) {
        let box = LuaFunctionBox(name: name, body: body)
        lopper_push_swift_function(state, Unmanaged.passRetained(box).toOpaque())
    }

    // MARK: - Calling Lua from Swift

    /// Calls the function below `arguments` values on the stack in protected mode;
    /// throws the Lua error (already located, with traceback) instead of raising.
    public func call(arguments: Int32, results: Int32) throws {
        let status = lopper_pcall(state, arguments, results)
        if status != LUA_OK {
            let error = errorOnTop(status: status)
            pop()
            throw error
        }
    }

    func errorOnTop(status: Int32) -> LuaError {
        if status == LUA_ERRMEM {
            let limit = lopper_lua_limit(state)
            let detail = limit > 0 ? " (over the Lua memory limit of \(limit >> 20) MiB)" : ""
            return LuaError("not enough memory" + detail, hasLocation: true)
        }
        return LuaError(handlerOutput: stringValue(-1) ?? "(error object is a \(typeName(-1)) value)")
    }
}
