import LopperIO
import LopperCore
import LopperPrune

/// `lopper plugin check`: runs a loaded plugin with its default parameters on small
/// random tensors (a weight, a bias, BF16 and F32) and checks what comes back.
public enum PluginCheck {
    /// Lines describing each trial; throws on the first problem. Weights come with
    /// made-up calibration statistics, so methods that need them can be checked too.
    public static func run(_ plugin: Plugin, seed: UInt64 = 1) throws -> [String] {
        let trials: [(String, [Int], DType)] = [
            ("model.layers.0.mlp.up_proj.weight", [24, 40], .bf16),
            ("model.layers.1.self_attn.q_proj.weight", [17, 33], .f32),
            ("model.layers.1.self_attn.q_proj.bias", [17], .f32),
        ]
        var lines: [String] = []
        for (name, shape, dtype) in trials {
            let base = try uniform(shape, key: RandomKey(seed: seed, name: "base/" + name)).converted(to: dtype)
            let noise = try scale(try uniform(shape, key: RandomKey(seed: seed, name: "delta/" + name)), 0.01)
            let finetuned = try add(base, noise, dtype: dtype)
            let parameters = try plugin.schema.resolve([], name: name, layer: layerIndex(of: name), layerCount: 2)
            var statistics: [String: Tensor] = [:]
            if shape.count == 2 {
                statistics["input_mean"] = try uniform([shape[1]], key: RandomKey(seed: seed, name: "mean/" + name))
                statistics["input_norm"] = try add(try uniform([shape[1]], key: RandomKey(seed: seed, name: "norm/" + name)), 0.5)
            }
            for output in [DeltaOutput.merged, .delta] {
                var job = PruneJob(name: name, layerCount: 2, base: base, finetuned: finetuned,
                                   parameters: parameters, seed: seed, output: output, outputDType: dtype)
                job.statistics = statistics
                let outcome = try plugin.prune(job)
                let result: Tensor
                switch outcome.result {
                case .unchanged: lines.append("\(name) \(shape.shapeText) \(dtype) \(output): unchanged"); continue
                case .output(let tensor), .prunedDelta(let tensor): result = tensor
                }
                guard result.shape == shape else {
                    throw PluginError("\(plugin.path): returned shape \(result.shape.shapeText) for \(name) of shape \(shape.shapeText)")
                }
                guard result.dtype.isComputable else {
                    throw PluginError("\(plugin.path): returned a \(result.dtype) tensor for \(name); expected floating point")
                }
                let stats = try LopperCore.stats(result)
                guard stats.nanCount == 0, stats.min.isFinite, stats.max.isFinite else {
                    throw PluginError("\(plugin.path): produced NaN or infinite values for \(name)")
                }
                lines.append("\(name) \(shape.shapeText) \(dtype) \(output): ok"
                             + (outcome.rescale.map { ", rescale \(formatted($0, 4))" } ?? ""))
            }
        }
        return lines
    }
}
