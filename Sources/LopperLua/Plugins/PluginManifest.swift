import CLua
import CLuaShim
import LopperIO
import LopperPrune

/// What a plugin's table declares (plugin contract v2), read once from the Lua stack
/// with raw access only (no metamethod of the plugin runs, and a field cannot answer
/// differently on a second read), copied into Swift values and validated here. Every
/// path or message built from a plugin is built from these values.
public struct PluginManifest: Sendable {
    public enum Hook: String, Sendable {
        /// `prune(delta, ctx) -> D'`: the plugin builds the pruned delta.
        case prune
        /// `score(delta, ctx) -> importance`: the host keeps the top `1 - rate`.
        case score
    }

    public var name: String
    public var version: String
    public var summary: String
    public var hook: Hook
    /// `rescale(ctx, delta, mask) -> number`, beside `score` only.
    public var hasRescale: Bool
    /// The plugin's own parameters followed by the host's (`StandardParameters`).
    public var specs: [ParamSpec]
    /// What the plugin claims about itself (`properties = { unbiased = true }`), which
    /// `plugin check` tests statistically.
    public var properties: Set<String>

    /// The properties a plugin may declare, with what `plugin check` tests.
    public static let knownProperties = ["unbiased": "E[D'] = D: the pruned delta is the delta on average over seeds"]

    public static let api = 2
    static let fields: Set<String> = ["name", "version", "api", "summary", "params", "defaults", "prune", "score", "rescale", "properties"]

    /// Reads the table at `index` (absolute or relative) of `stack`.
    static func read(_ stack: LuaStack, at index: Int32) throws -> PluginManifest {
        let state = stack.state
        let table = lua_absindex(state, index), base = stack.top
        defer { stack.setTop(base) }
        guard stack.type(table) == LUA_TTABLE else {
            throw PluginError("a plugin must return a table, got \(stack.typeName(table))")
        }
        let fields = try RawTable(stack, table)
        if fields.type("apply") != LUA_TNIL {
            throw PluginError("hook 'apply' is from plugin API 1; API 2 has prune(delta, ctx) returning the pruned delta (the host adds the base), or score(delta, ctx) returning importance")
        }
        guard fields.number("api") == Double(api) else {
            throw PluginError("field 'api' must be \(api) (this Lopper speaks plugin API \(api)), got \(fields.shown("api"))")
        }
        let name = try fields.text("name", pattern: "letters, digits, '_' and '-'", limit: 64) { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || $0 == "_" || $0 == "-" }
        let version = try fields.text("version", pattern: "letters, digits, '.', '+' and '-'", limit: 32) {
            ($0.isLetter || $0.isNumber) && $0.isASCII || ".+-".contains($0)
        }
        let summary = try fields.text("summary", pattern: "printable text", limit: 200) { !$0.isControlCharacter }
        for hook in ["prune", "score", "rescale"] where fields.type(hook) != LUA_TNIL && fields.type(hook) != LUA_TFUNCTION {
            throw PluginError("hook '\(hook)' must be a function, got \(fields.shown(hook))")
        }
        let hasPrune = fields.type("prune") == LUA_TFUNCTION, hasScore = fields.type("score") == LUA_TFUNCTION
        let hasRescale = fields.type("rescale") == LUA_TFUNCTION
        switch (hasPrune, hasScore) {
        case (false, false):
            throw PluginError("a plugin needs one hook: prune(delta, ctx) returning the pruned delta, or score(delta, ctx) returning importance (higher keeps)")
        case (true, true):
            throw PluginError("a plugin has one primary hook, not both prune and score: use score when the host should keep the top entries and rescale, prune when the plugin builds the pruned delta itself")
        default: break
        }
        if hasRescale && !hasScore {
            throw PluginError("hook 'rescale' goes with score only: a prune hook rescales inside the delta it returns")
        }
        let hook: Hook = hasScore ? .score : .prune
        let standard = StandardParameters.specs(score: hook == .score)
        var specs = try fields.table("params").map { try Self.specs(stack, $0, reserved: standard.map(\.name)) } ?? []
        var defaults: [String: ParamValue] = [:]
        if let index = try fields.table("defaults") {
            let schema = ParamSchema(method: name, specs: standard), table = try RawTable(stack, index)
            for (key, type) in try table.entries {
                guard let spec = schema.spec(key) else {
                    throw PluginError("defaults: '\(key)' is not a host parameter of a \(hook.rawValue) plugin (those are \(standard.map(\.name).joined(separator: ", ")))")
                }
                defaults[key] = try table.push(key) { try Self.value(stack, type, key: key, as: spec.type, at: "defaults.\(key)") }
                try Self.checkRange(defaults[key]!, of: spec, at: "defaults.\(key)")
            }
        }
        specs.sort { $0.name < $1.name }
        specs += StandardParameters.specs(score: hook == .score, defaults: defaults)
        var properties: Set<String> = []
        if let index = try fields.table("properties") {
            for (key, type) in try RawTable(stack, index).entries {
                guard knownProperties[key] != nil else {
                    throw PluginError("properties: '\(key)' is not a property Lopper can check (known: \(knownProperties.keys.sorted().joined(separator: ", ")))")
                }
                guard type == LUA_TBOOLEAN else { throw PluginError("properties.\(key) must be true or false") }
                if RawTable(unchecked: stack, index).push(key, { stack.boolean(-1) }) { properties.insert(key) }
            }
        }
        return PluginManifest(name: name, version: version, summary: summary, hook: hook, hasRescale: hasRescale, specs: specs,
                              properties: properties)
    }

    // MARK: - Parameters

    private static func specs(_ stack: LuaStack, _ index: Int32, reserved: [String]) throws -> [ParamSpec] {
        var specs: [ParamSpec] = []
        for (key, type) in try RawTable(stack, index).entries {
            let at = "parameter '\(key)'"
            guard key.first.map({ $0.isLetter || $0 == "_" }) == true, key.allSatisfy({ ($0.isLetter || $0.isNumber) && $0.isASCII || $0 == "_" }), key.count <= 64 else {
                throw PluginError("\(at): names are identifiers")
            }
            guard !reserved.contains(key) else {
                throw PluginError("\(at) belongs to the host (\(reserved.joined(separator: ", "))); set its default with defaults = { \(key) = ... }")
            }
            guard type == LUA_TTABLE else { throw PluginError("\(at): must be a table like { type = \"number\", default = 0.9 }") }
            let top = stack.top
            defer { stack.setTop(top) }
            lua_pushstring(stack.state, key)
            lua_rawget(stack.state, index)
            let fields = try RawTable(stack, stack.top)
            guard let typeName = fields.string("type"), let paramType = ParamType(rawValue: typeName) else {
                throw PluginError("\(at): type must be number, integer, string or boolean")
            }
            var spec = ParamSpec(name: key, type: paramType, doc: fields.string("doc").map(terminalSafe) ?? "")
            for bound in ["min", "max"] where fields.type(bound) != LUA_TNIL {
                guard let value = fields.number(bound), value.isFinite else { throw PluginError("\(at): \(bound) must be a finite number") }
                if bound == "min" { spec.min = value } else { spec.max = value }
            }
            if fields.type("choices") != LUA_TNIL {
                guard let choices = try fields.strings("choices"), !choices.isEmpty, choices.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isControlCharacter) }) else {
                    throw PluginError("\(at): choices must be a list of plain strings")
                }
                spec.choices = choices
            }
            if fields.type("default") != LUA_TNIL {
                let value = try fields.push("default") { try Self.value(stack, stack.type(-1), key: key, as: paramType, at: at + ": default") }
                try checkRange(value, of: spec, at: at + ": default")
                spec.defaultValue = value
            }
            if let only = try fields.table("only") {
                let entries = try RawTable(stack, only).entries
                guard entries.count == 1, let (other, _) = entries.first else {
                    throw PluginError("\(at): only must name one parameter, like only = { mode = \"fixed\" }")
                }
                let condition = RawTable(unchecked: stack, only)
                let single = condition.string(other).map { [$0] }, values = try single ?? condition.strings(other)
                guard let values, !values.isEmpty else {
                    throw PluginError("\(at): only = { \(other) = ... } takes a string or a list of strings")
                }
                spec.onlyWith = ParamCondition(key: other, values: values)
            }
            specs.append(spec)
        }
        let names = Set(specs.map(\.name))
        for spec in specs {
            if let condition = spec.onlyWith, !names.contains(condition.key), !reserved.contains(condition.key) {
                throw PluginError("parameter '\(spec.name)': only names '\(condition.key)', which is not a parameter")
            }
        }
        return specs
    }

    /// The value on top of the stack (of Lua type `type`) as a parameter of `paramType`.
    private static func value(_ stack: LuaStack, _ type: Int32, key: String, as paramType: ParamType, at: String) throws -> ParamValue {
        switch (paramType, type) {
        case (.number, LUA_TNUMBER):
            let number = try stack.number(-1, at)
            guard number.isFinite else { throw PluginError("\(at) must be finite") }
            return .number(number)
        case (.integer, LUA_TNUMBER):
            let number = try stack.number(-1, at)
            guard number.isFinite, number == number.rounded(), Swift.abs(number) < 1e15 else { throw PluginError("\(at) must be an integer") }
            return .number(number)
        case (.string, LUA_TSTRING): return .string(stack.stringValue(-1) ?? "")
        case (.boolean, LUA_TBOOLEAN): return .boolean(stack.boolean(-1))
        default: throw PluginError("\(at) must be a \(paramType == .integer ? "number" : paramType.rawValue), got \(stack.typeName(-1))")
        }
    }

    private static func checkRange(_ value: ParamValue, of spec: ParamSpec, at: String) throws {
        if case .number(let number) = value, (spec.min.map { number < $0 } ?? false) || (spec.max.map { number > $0 } ?? false) {
            throw PluginError("\(at) \(value) is outside its min/max")
        }
        if case .string(let text) = value, let choices = spec.choices, !choices.contains(text) {
            throw PluginError("\(at) \"\(terminalSafe(text))\" is not one of its choices")
        }
    }
}

extension Character {
    var isControlCharacter: Bool { unicodeScalars.contains { $0.properties.generalCategory == .control } }
}
