import Foundation
import LopperCore
import LopperIO

/// What a forward pass returns, one entry per input sequence (in input order).
public struct ModelOutput {
    /// Last hidden state of each sequence, F32 [len, hidden]. Decoders: after the final
    /// norm (what `lm_head` reads, transformers' `hidden_states[-1]`); encoders: the last layer's output.
    public var hidden: [Tensor]
    /// Decoders: F32 [len, vocab]. Sequence classifiers: F32 [numLabels]. Nil for a bare encoder.
    public var logits: [Tensor]?
    /// Encoders with a pooler: `tanh(dense(hidden[CLS]))`, F32 [hidden]. Nil otherwise.
    public var pooled: [Tensor]?

    public init(hidden: [Tensor], logits: [Tensor]? = nil, pooled: [Tensor]? = nil) {
        self.hidden = hidden
        self.logits = logits
        self.pooled = pooled
    }
}

public protocol LanguageModel: AnyObject {
    var config: ModelConfig { get }
    /// Token ids per sequence; sequences may have different lengths. The batch is packed:
    /// all tokens of all sequences form one [totalTokens, hidden] activation matrix, so each
    /// linear layer is one SGEMM over the whole batch, while attention, positions, masks and
    /// windows are per sequence (equivalent to a padding mask, with no padding). Outputs are
    /// per sequence, as if each ran alone (up to float rounding). An empty sequence gives
    /// [0, hidden] outputs (and no classifier logits are possible: that is an error).
    func forward(_ batch: [[Int]]) throws -> ModelOutput
    /// Called with (linear weight name as found in the checkpoint, F32 input activations
    /// [tokens, in_features]) for every linear layer during `forward`, for calibration
    /// statistics. Only real tokens (no padding). With packed batches it is called once per
    /// linear layer per `forward` with the packed inputs of the whole batch, [totalTokens, in]
    /// (sequence after sequence; the pooler and classifiers: one [CLS] row per sequence);
    /// statistics summed over tokens are therefore the same as one call per sequence.
    /// Not called for an `lm_head` tied to the embeddings.
    var linearInputObserver: ((String, Tensor) -> Void)? { get set }
}

/// Loads `folder` (config.json + safetensors). `weights` overrides where tensors come
/// from (default: the folder's checkpoint), e.g. a pruned model held in memory; it should
/// throw for a name it does not have. Weights of any float dtype are widened to F32.
public func loadModel(folder: String, weights: ((String) throws -> Tensor)? = nil) throws -> LanguageModel {
    let config = try ModelConfig.load(folder: folder)
    // Before any allocation: a config with absurd sizes must not get near the allocator.
    try config.checkFitsInMemory(source: folder + "/config.json")
    let source: WeightSource
    if let weights {
        source = WeightSource(fetch: weights, names: nil)
    } else {
        let checkpoint = try Checkpoint(path: folder)
        source = WeightSource(fetch: { try checkpoint.tensor($0) }, names: Set(checkpoint.names))
    }
    switch config.architecture {
    case .llama: return try LlamaModel(config: config, weights: source)
    case .bert: return try BertModel(config: config, weights: source)
    }
}

/// Tensor lookup while a model is built: collects every missing tensor and every
/// shape mismatch, so one error lists them all.
final class WeightSource {
    let fetch: (String) throws -> Tensor
    let names: Set<String>?
    private(set) var missing: [String] = []
    private(set) var wrong: [String] = []

    init(fetch: @escaping (String) throws -> Tensor, names: Set<String>?) {
        self.fetch = fetch
        self.names = names
    }

    func has(_ name: String) -> Bool {
        if let names { return names.contains(name) }
        return (try? fetch(name)) != nil
    }

    /// The first of `prefixes` under which `probe` exists (e.g. "model." or "").
    func prefix(among prefixes: [String], probe: String) -> String {
        prefixes.first { has($0 + probe) } ?? prefixes[0]
    }

    /// The tensor `name` of `shape`, or zeros of that shape when missing or misshapen
    /// (recorded; `check()` throws).
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        let found: Tensor
        if names?.contains(name) == false {
            missing.append(name)
            return try Tensor(zeros: shape)
        }
        do { found = try fetch(name) } catch {
            missing.append(name)
            return try Tensor(zeros: shape)
        }
        guard found.shape == shape else {
            wrong.append("\(name) is \(found.shape.shapeText), expected \(shape.shapeText)")
            return try Tensor(zeros: shape)
        }
        guard found.dtype.isFloatingPoint else {
            wrong.append("\(name) has dtype \(found.dtype), expected a float type")
            return try Tensor(zeros: shape)
        }
        return found
    }

    func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
        has(name) ? try tensor(name, shape) : nil
    }

    /// F32 values of a small tensor (norm weights, biases).
    func floats(_ name: String, _ shape: [Int]) throws -> [Float] {
        let t = try tensor(name, shape)
        var out = [Float](repeating: 0, count: t.count)
        out.withUnsafeMutableBufferPointer { loadFloats(t.data, dtype: t.dtype, into: $0.baseAddress!, count: t.count) }
        return out
    }

    func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool? = nil) throws -> NamedLinear {
        let w = try tensor(name + ".weight", [out, inFeatures])
        let b: Tensor?
        switch bias {
        case true?: b = try tensor(name + ".bias", [out])
        case false?: b = nil
        case nil: b = try optional(name + ".bias", [out])
        }
        return NamedLinear(name: name + ".weight", linear: try Linear(weight: w, bias: b))
    }

    func check() throws {
        if !missing.isEmpty { throw ModelError.missingTensors(missing) }
        if !wrong.isEmpty { throw ModelError.badTensor("tensors that do not fit the config: " + wrong.joined(separator: "; ")) }
    }
}

/// A linear layer with the checkpoint name of its weight, reported to the observer.
struct NamedLinear {
    let name: String
    let linear: Linear

    func callAsFunction(_ x: Tensor, _ observer: ((String, Tensor) -> Void)?) throws -> Tensor {
        observer?(name, x)
        return try linear(x)
    }
}
