import Foundation

/// A PEFT LoRA `adapter_config.json`: what Lopper needs to rebuild each target module's
/// delta, with PEFT's rules (peft/tuners/lora/layer.py `update_layer`, model.py
/// `_create_and_replace`, tuners_utils.py `check_target_module_exists`).
public struct LoraConfig: Sendable {
    /// `target_modules`: names (a module matches when its key is one, or ends with `.NAME`),
    /// a regular expression the whole key must match, or PEFT's `all-linear`.
    public enum Targets: Sendable, Equatable, CustomStringConvertible {
        case names([String])
        case pattern(String)
        case allLinear

        public var description: String {
            switch self {
            case .names(let names): return "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            case .pattern(let pattern): return "\"\(pattern)\""
            case .allLinear: return "\"all-linear\""
            }
        }
    }

    public var rank: Int
    public var alpha: Double
    public var useRSLoRA = false
    public var fanInFanOut = false
    /// `rank_pattern` / `alpha_pattern`, in file order (PEFT takes the first key that matches).
    public var rankPattern: [(String, Int)] = []
    public var alphaPattern: [(String, Double)] = []
    public var targets: Targets
    public var modulesToSave: [String] = []
    /// `lora_bias`: lora_B has a bias, added (scaled) to the base layer's bias.
    public var loraBias = false

    /// Parses the file at `path`; every error names it and the key.
    public init(path: String) throws {
        let data = try readFile(path)
        let json: JSON
        do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch { throw SafetensorsError(path, "\(error)") }
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(path, message) }
        guard case .object = json else { throw fail("not a JSON object") }
        if case .string(let type)? = json["peft_type"], type.uppercased() != "LORA" {
            throw fail("peft_type is \(type); only LORA adapters are read")
        }
        if case .bool(true)? = json["use_dora"] { throw fail("use_dora is true; DoRA adapters are not supported") }
        guard let rank = json["r"]?.nonNegativeInteger, rank >= 1, rank <= 1 << 20 else {
            throw fail("\"r\" must be an integer from 1 to \(1 << 20)")
        }
        self.rank = rank
        alpha = try Self.number(json["lora_alpha"], "lora_alpha", fail) ?? Double(rank)
        useRSLoRA = try Self.flag(json["use_rslora"], "use_rslora", fail)
        fanInFanOut = try Self.flag(json["fan_in_fan_out"], "fan_in_fan_out", fail)
        loraBias = try Self.flag(json["lora_bias"], "lora_bias", fail)
        for (key, value) in try Self.members(json["rank_pattern"], "rank_pattern", fail) {
            guard let r = value.nonNegativeInteger, r >= 1, r <= 1 << 20 else { throw fail("rank_pattern \"\(key)\" must be an integer from 1 to \(1 << 20)") }
            rankPattern.append((key, r))
        }
        for (key, value) in try Self.members(json["alpha_pattern"], "alpha_pattern", fail) {
            guard let a = try Self.number(value, "alpha_pattern \"\(key)\"", fail) else { throw fail("alpha_pattern \"\(key)\" must be a number") }
            alphaPattern.append((key, a))
        }
        switch json["target_modules"] {
        case .string(let text)?:
            targets = text == "all-linear" ? .allLinear : .pattern(text)
        case .array(let items)?:
            targets = .names(try items.map { item in
                guard case .string(let name) = item else { throw fail("target_modules must hold module names") }
                return name
            })
        default:
            throw fail("target_modules must be a list of module names or a regular expression")
        }
        switch json["modules_to_save"] {
        case nil, .null?: break
        case .array(let items)?:
            modulesToSave = try items.map { item in
                guard case .string(let name) = item else { throw fail("modules_to_save must hold module names") }
                return name
            }
        default: throw fail("modules_to_save must be a list of module names")
        }
        for pattern in [targetPattern].compactMap({ $0 }) + rankPattern.map(\.0) + alphaPattern.map(\.0) + modulesToSave {
            guard (try? NSRegularExpression(pattern: pattern)) != nil else { throw fail("\"\(pattern)\" is not a regular expression") }
        }
    }

    private var targetPattern: String? { if case .pattern(let text) = targets { return text } else { return nil } }

    /// Whether `target_modules` names module `key` (PEFT's module path, without `base_model.model.`).
    public func targets(_ key: String) -> Bool {
        switch targets {
        case .allLinear: return true
        case .pattern(let pattern): return Self.fullMatch("(?:\(pattern))", key)
        case .names(let names): return names.contains { key == $0 || key.hasSuffix("." + $0) }
        }
    }

    /// Rank and alpha of module `key`: the first `rank_pattern` / `alpha_pattern` key that
    /// matches the end of it (`(.*\.)?(KEY)$`), else `r` and `lora_alpha`.
    public func rankAndAlpha(of key: String) -> (rank: Int, alpha: Double) {
        let rank = rankPattern.first { Self.fullMatch("(.*\\.)?(\($0.0))", key) }?.1 ?? self.rank
        let alpha = alphaPattern.first { Self.fullMatch("(.*\\.)?(\($0.0))", key) }?.1 ?? self.alpha
        return (rank, alpha)
    }

    /// PEFT's scaling of a module: alpha / r, or alpha / sqrt(r) with rsLoRA.
    public func scaling(rank: Int, alpha: Double) -> Double {
        useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    /// Whether `key` is (inside) a `modules_to_save` module: `(^|.*\.)NAME($|\..*)`.
    public func isSaved(_ key: String) -> Bool {
        modulesToSave.contains { Self.fullMatch("(^|.*\\.)\($0)($|\\..*)", key) }
    }

    static func fullMatch(_ pattern: String, _ text: String) -> Bool {
        guard let expression = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    private static func number(_ value: JSON?, _ key: String, _ fail: (String) -> SafetensorsError) throws -> Double? {
        switch value {
        case nil, .null?: return nil
        case .number(let number, _)? where number.isFinite && number > 0: return number
        default: throw fail("\"\(key)\" must be a positive number")
        }
    }

    private static func flag(_ value: JSON?, _ key: String, _ fail: (String) -> SafetensorsError) throws -> Bool {
        switch value {
        case nil, .null?: return false
        case .bool(let flag)?: return flag
        default: throw fail("\"\(key)\" must be true or false")
        }
    }

    private static func members(_ value: JSON?, _ key: String, _ fail: (String) -> SafetensorsError) throws -> [(String, JSON)] {
        switch value {
        case nil, .null?: return []
        case .object(let members)?: return members
        default: throw fail("\"\(key)\" must be an object")
        }
    }
}
