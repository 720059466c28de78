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
        func int(_ key: String) throws -> Int {
            guard let value = number(key) else { throw ModelError.badConfig("\(source): no number \"\(key)\"") }
            return Int(value)
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
        numKeyValueHeads = number("num_key_value_heads").map { Int($0) } ?? numHeads
        headDim = number("head_dim").map { Int($0) } ?? hiddenSize / max(1, numHeads)
        intermediateSize = try int("intermediate_size")
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = number("max_position_embeddings").map { Int($0) } ?? 0
        padTokenId = number("pad_token_id").map { Int($0) }
        if case .object(let labels)? = json["id2label"] { numLabels = labels.count }
        if let n = number("num_labels") { numLabels = Int(n) }
        typeVocabSize = number("type_vocab_size").map { Int($0) } ?? 2
        switch architecture {
        case .llama:
            normEps = Float(number("rms_norm_eps") ?? 1e-6)
            hiddenAct = string("hidden_act") ?? "silu"
            tieWordEmbeddings = { if case .bool(let b)? = json["tie_word_embeddings"] { return b } else { return false } }()
            positionOffset = 0
            rope = try Self.rope(json, source: source)
            if type == "mistral", let w = number("sliding_window") { slidingWindow = Int(w) }
            if type == "qwen2", case .bool(true)? = json["use_sliding_window"] {
                throw ModelError.badConfig("\(source): Qwen2 with use_sliding_window is not supported")
            }
        case .bert:
            normEps = Float(number("layer_norm_eps") ?? 1e-12)
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

    private static func rope(_ json: JSON, source: String) throws -> RopeConfig {
        var theta: Double = 10000
        if case .number(let t, _)? = json["rope_theta"] { theta = t }
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
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.badConfig("\(path): cannot read")
        }
        let json: JSON
        do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch { throw ModelError.badConfig("\(path): \(error)") }
        return try ModelConfig(json: json, source: path)
    }
}
