import CLua
import CLuaShim
import LopperCore
import LopperIO

/// An options table argument (`lopper.keep_top(scores, { keep = 0.1 })`), read with raw
/// access only: no metamethod of the caller's table runs, and every key must be one
/// the function knows.
struct LuaOptions {
    private var values: [String: LuaValue] = [:]
    let function: String

    /// The table at `index` (nil or absent: no options).
    init(_ stack: LuaStack, _ index: Int32, _ function: String, keys: [String]) throws {
        self.function = function
        if stack.isNoneOrNil(index) { return }
        guard stack.type(index) == LUA_TTABLE else {
            throw LuaError.badArgument(index, function, "options table", got: stack.typeName(index))
        }
        let table = RawTable(unchecked: stack, index)
        let entries: [(String, Int32)]
        do { entries = try table.entries } catch { throw LuaError("\(function): options take string keys (\(keys.joined(separator: ", ")))") }
        for (key, _) in entries {
            guard keys.contains(key) else {
                throw LuaError("\(function): unknown option '\(terminalSafe(key))' (options: \(keys.joined(separator: ", ")))")
            }
            values[key] = try table.push(key) { try stack.optionValue(-1, function) }
        }
    }

    func number(_ key: String) throws -> Double? {
        guard let value = values[key] else { return nil }
        guard let number = value.number else { throw mistyped(key, "a number", value) }
        return number
    }

    func integer(_ key: String) throws -> Int? {
        guard let number = try number(key) else { return nil }
        guard let exact = Int(exactly: number) else { throw LuaError("\(function): option \(key) must be an integer, got \(number)") }
        return exact
    }

    func string(_ key: String) throws -> String? {
        guard let value = values[key] else { return nil }
        guard let text = value.string else { throw mistyped(key, "a string", value) }
        return text
    }

    func tensor(_ key: String) throws -> Tensor? {
        guard let value = values[key] else { return nil }
        guard let tensor = value.tensor else { throw mistyped(key, "a tensor", value) }
        return tensor
    }

    /// A required option.
    func required<T>(_ key: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(key) else { throw LuaError("\(function): option \(key) is required") }
        return value
    }

    /// A string option that must name a case of `T`.
    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let value = T(rawValue: text) else {
            throw LuaError("\(function): option \(key) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(terminalSafe(text))\"")
        }
        return value
    }

    private func mistyped(_ key: String, _ expected: String, _ value: LuaValue) -> LuaError {
        let got: String
        switch value {
        case .nil: got = "nil"
        case .boolean: got = "boolean"
        case .number: got = "number"
        case .string: got = "string"
        case .tensor: got = "tensor"
        case .other(let name): got = name
        }
        return LuaError("\(function): option \(key) must be \(expected), got \(got)")
    }
}

extension LuaStack {
    /// Field `key` of an optional options table at `index`, read raw: nil when the table
    /// or the field is absent; an error when `index` holds something other than a table.
    func optionalField(_ index: Int32, _ key: String, _ function: String) throws -> LuaValue? {
        if isNoneOrNil(index) { return nil }
        guard type(index) == LUA_TTABLE else {
            throw LuaError.badArgument(index, function, "options table", got: typeName(index))
        }
        field(key, of: index)
        defer { pop() }
        return try optionValue(-1, function)
    }

    /// The value at `index` as an option: nil, a number, string, boolean or tensor (a
    /// lazy one is computed), or `.other` naming its type.
    func optionValue(_ index: Int32, _ function: String) throws -> LuaValue? {
        switch type(index) {
        case LUA_TNIL, LUA_TNONE: return nil
        case LUA_TNUMBER: return .number(try number(index, function))
        case LUA_TSTRING: return .string(stringValue(index) ?? "")
        case LUA_TBOOLEAN: return .boolean(boolean(index))
        default:
            if isTensor(index) { return .tensor(try tensor(index, function)) }
            return .other(typeName(index))
        }
    }
}
