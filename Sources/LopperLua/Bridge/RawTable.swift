import CLua
import CLuaShim
import LopperIO
import LopperPrune

/// Raw reads of one Lua table's string-keyed fields (the table stays on the stack).
struct RawTable {
    let stack: LuaStack
    let index: Int32

    /// Checks that every key is a string (then no read below can raise).
    init(_ stack: LuaStack, _ index: Int32) throws {
        self.init(unchecked: stack, index)
        _ = try entries
    }

    init(unchecked stack: LuaStack, _ index: Int32) {
        self.stack = stack
        self.index = lua_absindex(stack.state, index)
    }

    /// Key and value type of every field, in key order (lua_next is raw).
    var entries: [(String, Int32)] {
        get throws {
            let state = stack.state
            var result: [(String, Int32)] = []
            stack.pushNil()
            while lua_next(state, index) != 0 {
                defer { stack.pop() }
                guard stack.type(-2) == LUA_TSTRING, let key = stack.stringValue(-2) else {
                    stack.pop(2)
                    throw PluginError("tables in a plugin manifest take string keys only (found a \(stack.typeName(-2)) key)")
                }
                guard result.count < 1000 else { stack.pop(2); throw PluginError("a table in the plugin manifest has more than 1000 fields") }
                result.append((key, stack.type(-1)))
            }
            return result.sorted { $0.0 < $1.0 }
        }
    }

    /// Pushes field `key`, runs `body` with it on top, pops it.
    func push<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
        stack.field(key, of: index)
        defer { stack.pop() }
        return try body()
    }

    func type(_ key: String) -> Int32 { push(key) { stack.type(-1) } }
    func string(_ key: String) -> String? { push(key) { stack.stringValue(-1) } }
    func number(_ key: String) -> Double? {
        push(key) {
            guard stack.type(-1) == LUA_TNUMBER else { return nil }
            var isNumber: Int32 = 0
            return lopper_tonumber(stack.state, -1, &isNumber)
        }
    }

    /// The field as a value for messages (`"3"`, `a table`).
    func shown(_ key: String) -> String {
        push(key) {
            switch stack.type(-1) {
            case LUA_TSTRING: return "\"" + terminalSafe(String((stack.stringValue(-1) ?? "").prefix(80))) + "\""
            case LUA_TNUMBER: return ParamValue.format(number(key) ?? 0)
            default: return stack.typeName(-1)
            }
        }
    }

    /// A non-empty string field of at most `limit` characters, each passing `allowed`.
    func text(_ key: String, pattern: String, limit: Int, allowed: (Character) -> Bool) throws -> String {
        guard let value = string(key), !value.isEmpty else {
            throw PluginError("field '\(key)' must be a non-empty string, got \(shown(key))")
        }
        guard value.count <= limit, value.allSatisfy(allowed) else {
            throw PluginError("field '\(key)' may hold only \(pattern) (at most \(limit)), got \(shown(key))")
        }
        return value
    }

    /// The absolute stack index of table field `key`, pushed (and left for the caller's
    /// lifetime of this manifest read), or nil when absent; an error for another type.
    func table(_ key: String) throws -> Int32? {
        switch stack.field(key, of: index) {
        case LUA_TNIL: stack.pop(); return nil
        case LUA_TTABLE: return stack.top
        default:
            let type = stack.typeName(-1)
            stack.pop()
            throw PluginError("field '\(key)' must be a table, got \(type)")
        }
    }

    /// A sequence of strings, or nil when the field is not a table.
    func strings(_ key: String) throws -> [String]? {
        try push(key) {
            guard stack.type(-1) == LUA_TTABLE else { return nil }
            let length = lua_rawlen(stack.state, -1)
            guard length <= 1000 else { throw PluginError("field '\(key)' has more than 1000 entries") }
            var values: [String] = []
            for position in 0..<Int(length) {
                lua_rawgeti(stack.state, -1, lua_Integer(position + 1))
                defer { stack.pop() }
                guard let value = stack.stringValue(-1) else { return nil }
                values.append(value)
            }
            return values
        }
    }
}
