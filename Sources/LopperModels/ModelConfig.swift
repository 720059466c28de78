import Foundation
import LopperIO

/// Model families with a forward pass in Lopper.
public enum Architecture: String, Sendable, CaseIterable {
    /// Decoder-only, pre-norm, RMSNorm, RoPE, grouped-query attention, SwiGLU: Llama, Qwen2, Mistral.
    case llama
    /// Encoder, post-norm, LayerNorm, learned positions, GELU: BERT, RoBERTa, MiniLM-style configs.
    case bert
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case missingTensors([String])
    case badTensor(String)
    case badConfig(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let text): return text
        case .missingTensors(let names):
            return "missing \(names.count) tensor\(names.count == 1 ? "" : "s"): " + names.joined(separator: ", ")
        case .badTensor(let text), .badConfig(let text), .badInput(let text): return text
        }
    }
}

/// Rotary position embedding frequencies (transformers' `rope_parameters`, or
/// `rope_theta` + `rope_scaling` in 4.x configs).
public struct RopeConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case plain
        /// Positions divided by `factor` (transformers' "linear").
        case linear(factor: Double)
        /// Llama 3.1: low frequencies divided by `factor`, a smooth ramp in between.
        case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Double)
    }
    public var theta: Double
    public var kind: Kind

    public init(theta: Double, kind: Kind) {
        self.theta = theta
        self.kind = kind
    }

    /// `inv_freq` for a head of `headDim` (length headDim / 2), as transformers computes it.
    public func inverseFrequencies(headDim: Int) -> [Double] {
        let base = (0..<(headDim / 2)).map { 1 / pow(theta, Double(2 * $0) / Double(headDim)) }
        switch kind {
        case .plain: return base
        case .linear(let factor): return base.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = original / low, highWavelength = original / high
            return base.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (original / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
    }
}

/// What Lopper reads from a Hugging Face `config.json`.
public struct ModelConfig: Sendable {
    public static let supportedModelTypes: [String: Architecture] = [
        "llama": .llama, "qwen2": .llama, "mistral": .llama,
        "bert": .bert, "roberta": .bert, "xlm-roberta": .bert, "camembert": .bert,
    ]

    public var architecture: Architecture
    /// `model_type` as written (lowercased), or the one implied by `architectures`.
    public var modelType: String
    /// `architectures` as written (e.g. ["LlamaForCausalLM"]).
    public var architectures: [String]
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    /// `rms_norm_eps` (Llama family) or `layer_norm_eps` (BERT family).
    public var normEps: Float
    /// `hidden_act`: "silu" for Llama, "gelu" (erf form) for BERT.
    public var hiddenAct: String
    /// Llama family only.
    public var rope: RopeConfig?
    /// Mistral's `sliding_window`: token i attends to j with i - w < j <= i. Nil: full causal attention.
    public var slidingWindow: Int?
    public var tieWordEmbeddings: Bool
    /// BERT family: `type_vocab_size`.
    public var typeVocabSize: Int
    /// BERT family: first position id. 0 for BERT; `pad_token_id + 1` for RoBERTa-style models.
    public var positionOffset: Int
    public var padTokenId: Int?
    /// `num_labels` / `id2label` size, when given.
    public var numLabels: Int?

    public init(json: JSON, source: String = "config.json") throws {
        func number(_ key: String) -> Double? {
            if case .number(let value, _)? = json[key] { return value }
            return nil
        }
        /// An integer within `limits` (`Self.limits`), or an error naming the key.
        func checked(_ key: String, _ value: Double) throws -> Int {
            let range = Self.limits[key] ?? 0...Self.largestInteger
            guard value.isFinite, value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
                throw ModelError.badConfig("\(source): \"\(key)\" is \(ConfigText.number(value)); it must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(value)
        }
        func int(_ key: String) throws -> Int {
            guard let value = number(key) else { throw ModelError.badConfig("\(source): no number \"\(key)\"") }
            return try checked(key, value)
        }
        func optionalInt(_ key: String) throws -> Int? {
            try number(key).map { try checked(key, $0) }
        }
        func positiveReal(_ key: String, _ fallback: Double, below upper: Double = .infinity) throws -> Double {
            let value = number(key) ?? fallback
            guard value.isFinite, value > 0, value < upper else {
                throw ModelError.badConfig("\(source): \"\(key)\" is \(ConfigText.number(value)); it must be a positive number\(upper.isFinite ? " below \(ConfigText.number(upper))" : "")")
            }
            return value
        }
        func string(_ key: String) -> String? {
            if case .string(let value)? = json[key] { return value }
            return nil
        }
        var names: [String] = []
        if case .array(let items)? = json["architectures"] {
            names = items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        architectures = names
        let declared = string("model_type")?.lowercased()
        var type = declared
        if type == nil || Self.supportedModelTypes[type!] == nil {
            // An unknown or missing model_type: try the class names.
            let byClass = names.lazy.compactMap { name -> String? in
                let lower = name.lowercased()
                for prefix in ["xlm-roberta", "xlmroberta", "roberta", "bert", "qwen2", "mistral", "llama"] where lower.hasPrefix(prefix) {
                    return prefix == "xlmroberta" ? "xlm-roberta" : prefix
                }
                return nil
            }.first
            if declared == nil || byClass != nil { type = byClass ?? declared }
        }
        guard let type, let architecture = Self.supportedModelTypes[type] else {
            let said = "model_type " + (declared.map { "\"\($0)\"" } ?? "(none)")
                + ", architectures " + (names.isEmpty ? "(none)" : names.joined(separator: ", "))
            throw ModelError.unsupportedArchitecture(
                "\(source): unsupported architecture (\(said)); supported model types: "
                    + Self.supportedModelTypes.keys.sorted().joined(separator: ", "))
        }
        self.architecture = architecture
        modelType = type
        hiddenSize = try int("hidden_size")
        numLayers = try int("num_hidden_layers")
        numHeads = try int("num_attention_heads")
        numKeyValueHeads = try optionalInt("num_key_value_heads") ?? numHeads
        headDim = try optionalInt("head_dim") ?? hiddenSize / max(1, numHeads)
        intermediateSize = try int("intermediate_size")
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = try optionalInt("max_position_embeddings") ?? 0
        padTokenId = try optionalInt("pad_token_id")
        if case .object(let labels)? = json["id2label"] { numLabels = labels.count }
        if let n = try optionalInt("num_labels") { numLabels = n }
        typeVocabSize = try optionalInt("type_vocab_size") ?? 2
        switch architecture {
        case .llama:
            normEps = Float(try positiveReal("rms_norm_eps", 1e-6, below: 1))
            hiddenAct = string("hidden_act") ?? "silu"
            tieWordEmbeddings = { if case .bool(let b)? = json["tie_word_embeddings"] { return b } else { return false } }()
            positionOffset = 0
            rope = try Self.rope(json, source: source)
            if type == "mistral", let w = try optionalInt("sliding_window") { slidingWindow = w }
            if type == "qwen2", case .bool(true)? = json["use_sliding_window"] {
                throw ModelError.badConfig("\(source): Qwen2 with use_sliding_window is not supported")
            }
        case .bert:
            normEps = Float(try positiveReal("layer_norm_eps", 1e-12, below: 1))
            hiddenAct = string("hidden_act") ?? "gelu"
            tieWordEmbeddings = false
            rope = nil
            // RoBERTa numbers positions from padding_idx + 1 (create_position_ids_from_input_ids).
            positionOffset = type == "bert" ? 0 : (padTokenId ?? 1) + 1
        }
        guard hiddenSize > 0, numHeads > 0, numKeyValueHeads > 0, numHeads % numKeyValueHeads == 0, headDim > 0 else {
            throw ModelError.badConfig("\(source): inconsistent sizes (hidden_size \(hiddenSize), \(numHeads) heads, \(numKeyValueHeads) key/value heads, head_dim \(headDim))")
        }
    }

    /// Integer fields and the values accepted (far beyond real models; a 10^9 hidden size
    /// or -3 layers is a broken file, not a model).
    static let largestInteger = 1 << 40
    static let limits: [String: ClosedRange<Int>] = [
        "hidden_size": 1...(1 << 20), "num_hidden_layers": 1...100_000, "num_attention_heads": 1...(1 << 16),
        "num_key_value_heads": 1...(1 << 16), "head_dim": 1...(1 << 16), "intermediate_size": 1...(1 << 22),
        "vocab_size": 1...(1 << 24), "max_position_embeddings": 0...(1 << 24), "pad_token_id": 0...(1 << 24),
        "num_labels": 0...(1 << 20), "type_vocab_size": 0...(1 << 16), "sliding_window": 1...(1 << 24),
    ]

    /// Bytes the model takes in memory (weights widened to F32), from the config alone.
    public var estimatedBytes: Double {
        let h = Double(hiddenSize), layers = Double(numLayers), inner = Double(intermediateSize)
        let attention = h * Double(numHeads * headDim) * 2 + h * Double(numKeyValueHeads * headDim) * 2
        let perLayer = attention + 3 * h * inner + 4 * h
        let embeddings = Double(vocabSize) * h * 2 + Double(maxPositionEmbeddings + typeVocabSize) * h
        return 4 * (layers * perLayer + embeddings)
    }

    /// Throws when the model would not fit in this machine's memory.
    public func checkFitsInMemory(source: String) throws {
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        guard physical > 0, estimatedBytes > physical else { return }
        throw ModelError.badConfig("\(source): the model needs about \(ConfigText.gib(estimatedBytes)) in memory (hidden_size \(hiddenSize), \(numLayers) layers, intermediate_size \(intermediateSize), vocab_size \(vocabSize)), more than this machine's \(ConfigText.gib(physical))")
    }

    private static func rope(_ json: JSON, source: String) throws -> RopeConfig {
        var theta: Double = 10000
        if case .number(let t, _)? = json["rope_theta"] { theta = t }
        func checkedRope(_ rope: RopeConfig) throws -> RopeConfig {
            func bad(_ what: String) -> ModelError { ModelError.badConfig("\(source): \(what)") }
            guard rope.theta.isFinite, rope.theta > 1 else { throw bad("\"rope_theta\" is \(ConfigText.number(rope.theta)); it must be a number above 1") }
            switch rope.kind {
            case .plain: break
            case .linear(let factor):
                guard factor.isFinite, factor > 0 else { throw bad("rope scaling \"factor\" is \(ConfigText.number(factor)); it must be positive") }
            case .llama3(let factor, let low, let high, let original):
                guard [factor, low, high, original].allSatisfy({ $0.isFinite && $0 > 0 }), high != low else {
                    throw bad("llama3 rope scaling needs positive factor, low_freq_factor, high_freq_factor (not equal) and original_max_position_embeddings")
                }
            }
            return rope
        }
        return try checkedRope(try parsedRope(json, theta: theta, source: source))
    }

    private static func parsedRope(_ json: JSON, theta: Double, source: String) throws -> RopeConfig {
        var theta = theta
        let params = json["rope_parameters"] ?? json["rope_scaling"]
        guard let params, case .object = params else { return RopeConfig(theta: theta, kind: .plain) }
        func number(_ key: String) -> Double? {
            if case .number(let value, _)? = params[key] { return value }
            return nil
        }
        if let t = number("rope_theta") { theta = t }
        var type = "default"
        if case .string(let t)? = params["rope_type"] { type = t } else if case .string(let t)? = params["type"] { type = t }
        switch type {
        case "default":
            return RopeConfig(theta: theta, kind: .plain)
        case "linear":
            return RopeConfig(theta: theta, kind: .linear(factor: number("factor") ?? 1))
        case "llama3":
            guard let factor = number("factor"), let original = number("original_max_position_embeddings") else {
                throw ModelError.badConfig("\(source): llama3 rope scaling needs factor and original_max_position_embeddings")
            }
            return RopeConfig(theta: theta, kind: .llama3(factor: factor, lowFreqFactor: number("low_freq_factor") ?? 1,
                                                          highFreqFactor: number("high_freq_factor") ?? 4,
                                                          originalMaxPositions: original))
        default:
            throw ModelError.badConfig("\(source): rope type \"\(type)\" is not supported (supported: default, linear, llama3)")
        }
    }

    /// Reads `folder/config.json`.
    public static func load(folder: String) throws -> ModelConfig {
        let path = folder + "/config.json"
        let data: Data
        do { data = try readFile(path) } catch { throw ModelError.badConfig("\(error)") }
        let json: JSON
        do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch { throw ModelError.badConfig("\(path): \(error)") }
        return try ModelConfig(json: json, source: path)
    }
}

/// Numbers as config messages show them.
private enum ConfigText {
    static func number(_ value: Double) -> String {
        value.isFinite && value == value.rounded() && Swift.abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
    static func gib(_ bytes: Double) -> String { String(format: "%.1f GiB", bytes / 1_073_741_824) }
}
