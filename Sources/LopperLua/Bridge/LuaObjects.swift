import CLua
import CLuaShim
import Foundation

/// Metatables for Swift objects other than tensors (checkpoints, deltas): `__gc`
/// releases the Swift reference, `__metatable` locks the table, methods are found by
/// name first, and other string keys go to `fallback` (`ck[name]`).
enum LuaObjects {
    /// Registers `metatable` once per state. Methods are remembered as `prefix:name`
    /// for `help` (each has a `LuaDocs` entry).
    static func register(_ metatable: String, prefix: String, in stack: LuaStack,
                         methods: [(String, LuaFunction)],
                         metamethods: [(String, LuaFunction)],
                         fallback: @escaping (LuaStack, String) throws -> Int32) {
        let state = stack.state
        let methodsKey = metatable + ".methods"
        lua_createtable(state, 0, Int32(methods.count))
        let table = stack.top
        for (name, body) in methods {
            stack.push(function: prefix + ":" + name, body)
            LuaDocs.remember(functionAt: -1, as: prefix + ":" + name, on: stack)
            stack.setField(name, in: table)
        }
        lua_setfield(state, lopper_registryindex(), methodsKey)

        guard let meta = newObjectMetatable(metatable, lock: "locked: \(prefix) metatables cannot be changed",
                                            metamethods: metamethods, in: stack) else { return }
        stack.push(function: prefix + ".__index") { stack in
            guard let key = stack.stringValue(2) else { stack.pushNil(); return 1 }
            // Raw lookups in plain tables: nothing here can raise.
            guard lua_getfield(stack.state, lopper_registryindex(), methodsKey) == LUA_TTABLE else {
                throw LuaError("\(prefix): method table is missing")
            }
            stack.push(key)
            if lua_rawget(stack.state, -2) != LUA_TNIL { return 1 }
            stack.pop(2)
            return try fallback(stack, key)
        }
        stack.setField("__index", in: meta)
        stack.pop()
    }

    /// Pushes a new metatable `name` for Swift objects: `__gc` releasing the Swift
    /// reference, `__metatable` locking it, and `metamethods`. Returns its stack index,
    /// or nil (nothing pushed) when the state already has it.
    static func newObjectMetatable(_ name: String, lock: String, metamethods: [(String, LuaFunction)], in stack: LuaStack) -> Int32? {
        guard luaL_newmetatable(stack.state, name) != 0 else { stack.pop(); return nil }
        let meta = stack.top
        lopper_pushcfunction(stack.state, lopper_object_gc)
        stack.setField("__gc", in: meta)
        stack.push(lock)
        stack.setField("__metatable", in: meta)
        for (method, body) in metamethods {
            stack.push(function: method, body)
            stack.setField(method, in: meta)
        }
        return meta
    }

    /// A `__pairs` that walks `names` in order and yields `name, value(name)`.
    static func pairs(_ function: String, names: @escaping (LuaStack) throws -> [String],
                      value: @escaping (LuaStack, String) throws -> Void) -> LuaFunction {
        return { stack in
            let list = try names(stack)
            let position = Dictionary(list.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
            stack.push(function: function + " iterator") { stack in
                let next: Int
                if stack.isNoneOrNil(2) {
                    next = 0
                } else {
                    guard let key = stack.stringValue(2), let index = position[key] else {
                        throw LuaError("\(function): iteration key is not a name of this object")
                    }
                    next = index + 1
                }
                guard next < list.count else { stack.pushNil(); return 1 }
                stack.push(list[next])
                try value(stack, list[next])
                return 2
            }
            stack.pushCopy(of: 1)
            stack.pushNil()
            return 3
        }
    }

    /// The name in `names` closest to `name` by edit distance, when it is close enough
    /// to be a likely typo (skipped for very large checkpoints).
    static func suggestion(for name: String, in names: [String]) -> String? {
        guard names.count <= 50_000, name.count <= 256 else { return nil }
        let target = Array(name.utf8)
        var best: (String, Int)?
        for candidate in names {
            let bytes = Array(candidate.utf8)
            guard Swift.abs(bytes.count - target.count) <= 3 else { continue }
            let distance = editDistance(target, bytes)
            if distance <= max(1, target.count / 4), distance < target.count, distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }

    private static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(1, a.count) where !a.isEmpty {
            current[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
