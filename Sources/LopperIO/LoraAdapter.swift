import Foundation
import LopperCore

/// A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) matched
/// against the base checkpoint it adapts. Opening reads headers only and checks every
/// factor against the config and the base: ranks, shapes, target modules.
///
/// Key names follow PEFT's saved state dict (utils/save_and_load.py): the model's keys
/// under `base_model.model.`, the adapter name removed; `M.lora_A.weight` [r, in] and
/// `M.lora_B.weight` [out, r] for a linear (or Conv1D) module `M`, `M.lora_embedding_A`
/// [r, num_embeddings] and `M.lora_embedding_B` [dim, r] for an embedding,
/// `M.lora_B.bias` with `lora_bias`; `M.base_layer.weight`, a target's own base weights
/// (saved for embeddings), replaces the base's. A `modules_to_save` tensor is saved under its
/// module's own key (`classifier.weight`); the in-memory form
/// `classifier.modules_to_save.NAME.weight` is read too.
public final class LoraAdapter: @unchecked Sendable {
    /// One target module: its delta is `scaling * B @ A`, transposed under
    /// `fan_in_fan_out` and for embeddings (layer.py `get_delta_weight`).
    public struct Module: Sendable {
        /// The module's key (`model.layers.0.self_attn.q_proj`).
        public var key: String
        /// The base tensor it changes (`model.layers.0.self_attn.q_proj.weight`).
        public var target: String
        public var factorA: String
        public var factorB: String
        /// `lora_B.bias` and the base bias it is added to (scaled), with `lora_bias`.
        public var bias: (factor: String, target: String)?
        public var rank: Int
        public var scaling: Double
        public var transposed: Bool
    }

    public static let configName = "adapter_config.json"
    public static let weightsName = "adapter_model.safetensors"

    public let path: String
    public let config: LoraConfig
    /// The adapter's own tensors (its other files, such as adapter_config.json, ride along).
    public let file: Checkpoint
    public let modules: [Module]
    /// Each factor's base tensor: A and B -> the weight, `lora_B.bias` -> the bias.
    public let factorTargets: [String: String]
    /// `modules_to_save` and `base_layer` tensors: the base tensor each replaces.
    public let savedTensors: [(target: String, factor: String)]

    /// Whether `path` is a folder that looks like a PEFT adapter.
    public static func isAdapterFolder(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else { return false }
        return [configName, weightsName, "adapter_model.bin"].contains { FileManager.default.fileExists(atPath: path + "/" + $0) }
    }

    public init(path: String, base: Checkpoint) throws {
        self.path = path
        let configPath = path + "/" + Self.configName, weightsPath = path + "/" + Self.weightsName
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw SafetensorsError(configPath, "missing: a PEFT adapter folder needs its adapter_config.json")
        }
        config = try LoraConfig(path: configPath)
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            let pickle = FileManager.default.fileExists(atPath: path + "/adapter_model.bin")
            throw SafetensorsError(weightsPath, pickle ? "missing (adapter_model.bin is a PyTorch pickle, which Lopper does not read; save with safe_serialization=True)"
                                                        : "missing: a PEFT adapter folder needs its adapter_model.safetensors")
        }
        let weights = try Checkpoint(path: path)
        guard weights.shards.count == 1, weights.shards[0].path.hasSuffix("/" + Self.weightsName) else {
            throw SafetensorsError(path, "an adapter folder holds one safetensors file, \(Self.weightsName)")
        }
        file = weights
        var parts = AdapterParts()
        for name in weights.names { try parts.add(name, config: config, file: weightsPath) }
        guard !parts.factors.isEmpty || !parts.saved.isEmpty else {
            throw SafetensorsError(weightsPath, "holds no LoRA factors (lora_A / lora_B) and no modules_to_save tensors")
        }
        let matcher = BaseNames(base)
        if config.targets != .allLinear {
            let baseModules = base.names.map { String($0.split(separator: ".").dropLast().joined(separator: ".")) }
            guard (baseModules + Array(parts.factors.keys)).contains(where: config.targets) || parts.factors.isEmpty else {
                throw SafetensorsError(configPath, "target_modules \(config.targets) match no module of \(base.path)")
            }
        }
        var modules: [Module] = []
        for key in parts.moduleOrder {
            let factors = parts.factors[key]!
            modules.append(try Self.module(key, factors, config: config, weights: weights, base: base, matcher: matcher, file: weightsPath))
        }
        var factorTargets: [String: String] = [:]
        for module in modules {
            factorTargets[module.factorA] = module.target
            factorTargets[module.factorB] = module.target
            if let bias = module.bias { factorTargets[bias.factor] = bias.target }
        }
        self.factorTargets = factorTargets
        let order = Dictionary(base.names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        self.modules = modules.sorted { order[$0.target] ?? 0 < order[$1.target] ?? 0 }
        savedTensors = try parts.saved.map { key, factor in
            (try matcher.resolve(key, factor: factor, file: weightsPath) ?? key, factor)
        }
        for module in self.modules {
            guard let replacement = savedTensors.first(where: { $0.target == module.target }) else { continue }
            let shape = weights.info(replacement.factor)!.shape, baseShape = base.info(module.target)!.shape
            guard shape == baseShape else {
                throw SafetensorsError(weightsPath, "tensor \"\(replacement.factor)\" is \(shape.shapeText), but \"\(module.target)\" in \(base.path) is \(baseShape.shapeText)")
            }
        }
    }

    /// One module's factors checked against the config (targeted, rank) and the base (shape).
    private static func module(_ key: String, _ factors: AdapterParts.Factors, config: LoraConfig, weights: Checkpoint,
                               base: Checkpoint, matcher: BaseNames, file: String) throws -> Module {
        guard let aName = factors.a, let bName = factors.b else {
            throw SafetensorsError(file, "module \"\(key)\" has \(factors.a == nil ? "no lora_A" : "no lora_B") factor beside \(factors.a ?? factors.b ?? "")")
        }
        guard config.targets(key) else {
            throw SafetensorsError(file, "tensor \"\(aName)\": module \"\(key)\" is not named by target_modules \(config.targets) in \(Self.configName)")
        }
        let a = weights.info(aName)!, b = weights.info(bName)!
        for info in [a, b] where !info.dtype.isComputable || info.shape.count != 2 {
            throw SafetensorsError(file, "tensor \"\(info.name)\": a LoRA factor must be a 2-D floating-point matrix, got \(info.shape.shapeText) \(info.dtype.name)")
        }
        let (rank, alpha) = config.rankAndAlpha(of: key)
        guard a.shape[0] == rank, b.shape[1] == rank else {
            let wrong = a.shape[0] != rank ? a : b
            throw SafetensorsError(file, "tensor \"\(wrong.name)\": shape \(wrong.shape.shapeText) has rank \(a.shape[0] != rank ? a.shape[0] : b.shape[1]), but \(Self.configName) gives module \"\(key)\" rank \(rank)")
        }
        guard let target = try matcher.resolve(key + ".weight", factor: aName, file: file) else {
            throw SafetensorsError(file, "tensor \"\(aName)\": the base \(base.path) has no tensor \(key).weight to adapt")
        }
        let transposed = factors.isEmbedding || config.fanInFanOut
        let product = transposed ? [a.shape[1], b.shape[0]] : [b.shape[0], a.shape[1]]
        let baseShape = base.info(target)!.shape
        guard baseShape == product else {
            throw SafetensorsError(file, "tensors \"\(bName)\" \(b.shape.shapeText) and \"\(aName)\" \(a.shape.shapeText) make a \(product.shapeText) delta\(transposed ? " (transposed)" : ""), but \"\(target)\" in \(base.path) is \(baseShape.shapeText)")
        }
        var bias: (String, String)?
        if let biasName = factors.bias {
            let biasTarget = String(target.dropLast("weight".count)) + "bias"
            guard let info = base.info(biasTarget), info.shape == [baseShape[transposed ? 1 : 0]],
                  weights.info(biasName)?.shape == info.shape else {
                throw SafetensorsError(file, "tensor \"\(biasName)\": no bias \"\(biasTarget)\" of its shape in \(base.path) to add it to")
            }
            bias = (biasName, biasTarget)
        }
        return Module(key: key, target: target, factorA: aName, factorB: bName, bias: bias, rank: rank,
                      scaling: config.scaling(rank: rank, alpha: alpha), transposed: transposed)
    }

    /// The delta this module adds to its target, in F32; with `base`, `base + delta`.
    public func delta(of module: Module, base: Tensor? = nil) throws -> Tensor {
        try lowRankProduct(b: try file.tensor(module.factorB), a: try file.tensor(module.factorA),
                           scale: Float(module.scaling), transposed: module.transposed, base: base)
    }
}

/// The adapter's tensor names sorted into factors per module and saved modules.
private struct AdapterParts {
    struct Factors { var a: String?; var b: String?; var bias: String?; var isEmbedding = false }
    var factors: [String: Factors] = [:] {
        didSet { for key in factors.keys where !moduleOrder.contains(key) { moduleOrder.append(key) } }
    }
    /// Modules in the order the file names them first (messages name the first fault).
    var moduleOrder: [String] = []
    var saved: [(key: String, factor: String)] = []

    static let prefix = "base_model.model."

    mutating func add(_ name: String, config: LoraConfig, file: String) throws {
        let key = name.hasPrefix(Self.prefix) ? String(name.dropFirst(Self.prefix.count)) : name
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for (index, part) in parts.enumerated() where part.hasPrefix("lora_") {
            let module = parts[..<index].joined(separator: ".")
            let rest = Array(parts[(index + 1)...])
            // The in-memory form carries the adapter name: lora_A.default.weight.
            let tail = rest.count == 2 || (rest.count == 1 && part.hasPrefix("lora_embedding_")) ? Array(rest.suffix(1)) : rest
            switch (part, tail) {
            case ("lora_A", ["weight"]): factors[module, default: Factors()].a = name
            case ("lora_B", ["weight"]): factors[module, default: Factors()].b = name
            case ("lora_B", ["bias"]): factors[module, default: Factors()].bias = name
            case ("lora_embedding_A", _) where rest.count <= 1: factors[module, default: Factors()].a = name; factors[module]!.isEmbedding = true
            case ("lora_embedding_B", _) where rest.count <= 1: factors[module, default: Factors()].b = name; factors[module]!.isEmbedding = true
            case ("lora_magnitude_vector", _): throw SafetensorsError(file, "tensor \"\(name)\": DoRA adapters are not supported")
            default: throw SafetensorsError(file, "tensor \"\(name)\": \(part) is not a LoRA factor Lopper reads (lora_A, lora_B, lora_embedding_A/B)")
            }
            return
        }
        if let range = key.range(of: ".base_layer.") {
            // A target's own base weights, saved beside its factors (PEFT's save_embedding_layers):
            // they replace the base's, and the product is added to them.
            saved.append((String(key[..<range.lowerBound]) + "." + key[range.upperBound...], name))
            return
        }
        var savedKey = key
        if let range = key.range(of: ".modules_to_save.") {
            // classifier.modules_to_save.default.weight -> classifier.weight
            let after = key[range.upperBound...].split(separator: ".", maxSplits: 1)
            savedKey = String(key[..<range.lowerBound]) + (after.count == 2 ? "." + after[1] : "")
        }
        guard config.isSaved(savedKey) else {
            throw SafetensorsError(file, "tensor \"\(name)\" is neither a LoRA factor nor in modules_to_save \(config.modulesToSave)")
        }
        saved.append((savedKey, name))
    }
}

/// Maps a key from the adapter (the PEFT model's names) to the base's tensor names, which
/// may carry a prefix more or less (`bert.` of a task model over a bare encoder).
private struct BaseNames {
    let base: Checkpoint
    init(_ base: Checkpoint) { self.base = base }

    func resolve(_ key: String, factor: String, file: String) throws -> String? {
        if base.contains(key) { return key }
        let candidates = base.names.filter { $0.hasSuffix("." + key) || key.hasSuffix("." + $0) }
        guard candidates.count <= 1 else {
            throw SafetensorsError(file, "tensor \"\(factor)\": \(key) could be any of \(candidates.prefix(3).joined(separator: ", ")) in \(base.path)")
        }
        return candidates.first
    }
}
