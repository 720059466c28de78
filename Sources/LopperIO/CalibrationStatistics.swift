import Foundation
import LopperCore

/// What `lopper calibrate` records (written here, for LopperModels) and pruning reads: a safetensors file with,
/// for every linear layer `NAME.weight` of the model, F32 tensors
/// `NAME.weight.input_mean` and `NAME.weight.input_norm` (the mean and the L2 norm of
/// each input feature over all calibration tokens), and in `__metadata__` the token
/// count (`lopper.tokens`), the model and the data.
public final class CalibrationStatistics {
    public let path: String
    public let checkpoint: Checkpoint
    public static let kinds = ["input_mean", "input_norm"]

    public init(path: String) throws {
        self.path = path
        checkpoint = try Checkpoint(path: path)
        guard checkpoint.names.contains(where: { $0.hasSuffix(".input_norm") }) else {
            throw SafetensorsError(path, "not a calibration statistics file (no *.input_norm tensors; make one with lopper calibrate)")
        }
    }

    public var metadata: [String: String] { checkpoint.shards.first?.metadata ?? [:] }

    /// The statistics of weight `name` (empty when the file has none for it, and for
    /// biases, which see no inputs).
    public func statistics(for name: String) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for kind in Self.kinds where checkpoint.contains(name + "." + kind) {
            result[kind] = try checkpoint.tensor(name + "." + kind)
        }
        return result
    }

    /// Writes a statistics file: each weight's input means and norms, and the token count.
    public static func write(_ layers: [(weight: String, mean: Tensor?, norm: Tensor?)], tokens: Int,
                             to path: String, metadata: [String: String]) throws {
        var tensors: [(String, Tensor)] = []
        for layer in layers {
            if let mean = layer.mean { tensors.append((layer.weight + "." + kinds[0], mean)) }
            if let norm = layer.norm { tensors.append((layer.weight + "." + kinds[1], norm)) }
        }
        var meta = metadata
        meta["lopper.tokens"] = String(tokens)
        try saveSafetensors(tensors, to: path, metadata: meta)
    }

    /// Refuses statistics whose feature counts do not fit the tensors to prune.
    public func check(against tensors: [(name: String, shape: [Int])]) throws {
        for (name, shape) in tensors where shape.count == 2 {
            for (kind, tensor) in try statistics(for: name) where tensor.count != shape[1] {
                throw SafetensorsError(path, "\(name).\(kind) has \(tensor.count) features, but \(name) has \(shape[1]) inputs (shape \(shape.shapeText)): statistics of another model?")
            }
        }
    }
}
