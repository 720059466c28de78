/// A method's typed parameters (the plugin contract's `params` table) and the
/// user's `--set` settings resolved against them, per tensor.

public enum ParamType: String, Sendable {
    case number, integer, string, boolean
}

public enum ParamValue: Equatable, Sendable, CustomStringConvertible {
    case number(Double)
    case string(String)
    case boolean(Bool)
    /// Numbers only: a list interpolated over layers (see `Schedule`).
    case schedule([Double])

    /// The number of a `.number` value (schedules are resolved to one by then).
    public var number: Double? { if case .number(let value) = self { return value } else { return nil } }

    public var description: String {
        switch self {
        case .number(let value): return Self.format(value)
        case .string(let value): return value
        case .boolean(let value): return value ? "true" : "false"
        case .schedule(let values): return "[" + values.map(Self.format).joined(separator: ", ") + "]"
        }
    }

    public static func format(_ value: Double) -> String {
        value == value.rounded() && Swift.abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// "Used only when `key` is one of `values`": a setting of the parameter otherwise is
/// an error, since the method would ignore it.
public struct ParamCondition: Sendable, Equatable {
    public var key: String
    public var values: [String]
    public init(key: String, values: [String]) { self.key = key; self.values = values }

    public var description: String { "\(key)=\(values.joined(separator: "|"))" }
}

public struct ParamSpec: Sendable {
    public var name: String
    public var type: ParamType
    public var defaultValue: ParamValue?
    public var min: Double?
    public var max: Double?
    /// For strings: the accepted values, if restricted.
    public var choices: [String]?
    public var doc: String
    public var onlyWith: ParamCondition?

    public init(name: String, type: ParamType, defaultValue: ParamValue? = nil, min: Double? = nil,
                max: Double? = nil, choices: [String]? = nil, doc: String = "", onlyWith: ParamCondition? = nil) {
        self.name = name; self.type = type; self.defaultValue = defaultValue
        self.min = min; self.max = max; self.choices = choices; self.doc = doc; self.onlyWith = onlyWith
    }

    /// `rate (number, default 0.9, 0..1): drop rate p`
    public var summary: String {
        var facts = [type.rawValue]
        if let defaultValue { facts.append("default \(defaultValue)") }
        if min != nil || max != nil {
            facts.append("\(min.map(ParamValue.format) ?? "-inf")..\(max.map(ParamValue.format) ?? "inf")")
        }
        if let choices { facts.append("one of " + choices.joined(separator: "|")) }
        if let onlyWith { facts.append("with \(onlyWith.description)") }
        return "\(name) (\(facts.joined(separator: ", ")))" + (doc.isEmpty ? "" : ": \(doc)")
    }
}

public struct ParamError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One `--set [GLOB:]key=value`: a global value, or one for the tensors matching GLOB.
public struct Setting: Sendable {
    public var glob: Glob?
    public var key: String
    public var text: String

    public init(glob: String? = nil, key: String, text: String) {
        self.glob = glob.map(Glob.init); self.key = key; self.text = text
    }

    public init(parsing argument: String) throws {
        guard let equals = argument.firstIndex(of: "=") else {
            throw ParamError("--set \(argument): expected key=value or GLOB:key=value")
        }
        var key = String(argument[..<equals])
        text = String(argument[argument.index(after: equals)...])
        glob = nil
        if let colon = key.lastIndex(of: ":") {
            glob = Glob(String(key[..<colon]))
            key = String(key[key.index(after: colon)...])
        }
        self.key = key.trimmingWhitespace
        guard !self.key.isEmpty else { throw ParamError("--set \(argument): empty parameter name") }
    }
}

public struct ParamSchema: Sendable {
    public var method: String
    public var specs: [ParamSpec]

    public init(method: String, specs: [ParamSpec]) {
        self.method = method; self.specs = specs
    }

    public func spec(_ key: String) -> ParamSpec? { specs.first { $0.name == key } }

    /// Checks every setting (names, types, ranges, conditions) once, before any tensor
    /// is touched.
    public func validate(_ settings: [Setting]) throws {
        for setting in settings { _ = try parse(setting) }
        _ = try resolve(settings.filter { $0.glob == nil }, name: "", layer: nil, layerCount: 1)
    }

    /// Parameter values for one tensor: defaults, then global settings, then settings
    /// whose glob matches `name` (later ones win); schedules evaluated at `layer`.
    public func resolve(_ settings: [Setting], name: String, layer: Int?, layerCount: Int) throws -> [String: ParamValue] {
        var values: [String: ParamValue] = [:]
        for spec in specs { if let value = spec.defaultValue { values[spec.name] = value } }
        let ordered = settings.filter { $0.glob == nil } + settings.filter { $0.glob?.matches(name) == true }
        for setting in ordered { values[setting.key] = try parse(setting) }
        for setting in ordered {
            guard let condition = spec(setting.key)?.onlyWith else { continue }
            let current = values[condition.key]?.description
            guard let current, condition.values.contains(current) else {
                throw ParamError("parameter '\(setting.key)' of method \(method) is only used with \(condition.description)"
                                 + " (here \(condition.key)=\(current ?? "unset")): the method would ignore it")
            }
        }
        for (key, value) in values {
            if case .schedule = value {
                let schedule = Schedule.gradient(value.scheduleValues)
                values[key] = .number(schedule.value(layer: layer, layerCount: layerCount))
            }
        }
        return values
    }

    func parse(_ setting: Setting) throws -> ParamValue {
        guard let spec = spec(setting.key) else {
            throw ParamError("unknown parameter '\(setting.key)' for method \(method); valid parameters: " + inlineListing)
        }
        let text = setting.text.trimmingWhitespace
        let value: ParamValue
        switch spec.type {
        case .number:
            switch Schedule(parsing: text) {
            case .constant(let number)?: value = .number(number)
            case .gradient(let points)?: value = .schedule(points)
            case nil: throw typeError(spec, text, "a number or a list like [0.9, 0.99]")
            }
        case .integer:
            guard let number = Int(text) else { throw typeError(spec, text, "an integer") }
            value = .number(Double(number))
        case .boolean:
            switch text.lowercased() {
            case "true", "yes", "1", "on": value = .boolean(true)
            case "false", "no", "0", "off": value = .boolean(false)
            default: throw typeError(spec, text, "true or false")
            }
        case .string:
            if let choices = spec.choices, !choices.contains(text) {
                throw typeError(spec, text, "one of " + choices.joined(separator: ", "))
            }
            value = .string(text)
        }
        for number in value.scheduleValues {
            if let min = spec.min, number < min { throw rangeError(spec, number) }
            if let max = spec.max, number > max { throw rangeError(spec, number) }
            if !number.isFinite { throw rangeError(spec, number) }
        }
        return value
    }

    /// Every parameter, one per line, for error messages and `plugin info`.
    public var listing: String {
        specs.isEmpty ? "  (this method takes no parameters)" : specs.map { "  " + $0.summary }.joined(separator: "\n")
    }

    /// The same on one line, for error messages.
    var inlineListing: String {
        specs.isEmpty ? "(none)" : specs.map(\.summary).joined(separator: "; ")
    }

    private func typeError(_ spec: ParamSpec, _ text: String, _ expected: String) -> ParamError {
        ParamError("parameter '\(spec.name)' of method \(method): '\(text)' is not \(expected); valid parameters: " + inlineListing)
    }

    private func rangeError(_ spec: ParamSpec, _ value: Double) -> ParamError {
        ParamError("parameter '\(spec.name)' of method \(method): \(ParamValue.format(value)) is outside "
                   + "\(spec.min.map(ParamValue.format) ?? "-inf")..\(spec.max.map(ParamValue.format) ?? "inf"); valid parameters: " + inlineListing)
    }
}

extension ParamValue {
    /// The numbers a value carries (none for strings and booleans).
    var scheduleValues: [Double] {
        switch self {
        case .number(let value): return [value]
        case .schedule(let values): return values
        default: return []
        }
    }
}
