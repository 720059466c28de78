import LopperIO
import LopperCore
import LopperPrune

/// `lopper plugin check`: runs a loaded plugin with its default parameters on small
/// random tensors (weights and a bias, BF16 and F32, merged and delta outputs) whose
/// deltas are small and positive, centred, mostly exact zeros, all zero, or large, and
/// checks shapes, finiteness and determinism (the same seed twice gives the same bytes).
/// `full` adds the declared properties (PluginCheck+Properties.swift) and the plugin's
/// own tests: what `plugin install` runs before it installs anything.
public enum PluginCheck {
    enum DeltaKind: String, CaseIterable {
        case small, centred, sparse, zero, large
    }

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
            let parameters = try plugin.schema.resolve([], name: name, layer: layerIndex(of: name), layerCount: 2)
            var statistics: [String: Tensor] = [:]
            if shape.count == 2 {
                statistics["input_mean"] = try uniform([shape[1]], key: RandomKey(seed: seed, name: "mean/" + name))
                statistics["input_norm"] = try add(try uniform([shape[1]], key: RandomKey(seed: seed, name: "norm/" + name)), 0.5)
            }
            for kind in DeltaKind.allCases {
                let finetuned = try add(base, try delta(kind, shape, key: RandomKey(seed: seed, name: "delta/" + name)), dtype: dtype)
                for output in [DeltaOutput.merged, .delta] {
                    var job = PruneJob(name: name, layerCount: 2, base: base, finetuned: finetuned,
                                       parameters: parameters, seed: seed, output: output, outputDType: dtype)
                    job.statistics = statistics
                    let what = "\(name) \(shape.shapeText) \(dtype) \(output), \(kind.rawValue) delta"
                    let (result, rescale) = try outcome(plugin, job, what)
                    guard let result else { if kind == .small { lines.append("\(what): unchanged") }; continue }
                    guard let again = try outcome(plugin, job, what).0, again.bytes == result.bytes else {
                        throw PluginError("\(plugin.path): not deterministic: the same seed gave different results for \(what) (math.random, or state kept between calls?)")
                    }
                    if kind == .small {
                        lines.append("\(what): ok, deterministic" + (rescale.map { ", rescale \(formatted($0, 4))" } ?? ""))
                    }
                }
            }
        }
        lines.append("finite and deterministic also for centred, sparse, zero and large deltas")
        return lines
    }

    /// The full check: the trials, the declared properties, and the plugin's own tests.
    public static func full(_ plugin: Plugin, tests: String?, testsFile: String) throws -> [String] {
        var lines = ["\(plugin.name) \(plugin.version): loads in the sandbox, manifest valid, plugin API \(PluginManifest.api)"]
        lines += try run(plugin)
        for property in plugin.manifest.properties.sorted() { lines.append(try checkProperty(property, plugin)) }
        if let tests {
            let outcomes = try PluginSelfTest.run(tests, file: testsFile, plugin: plugin)
            if let failed = outcomes.first(where: { $0.failure != nil }) {
                throw PluginError("\(testsFile): test \"\(failed.name)\" failed: \(failed.failure ?? "")")
            }
            lines.append("its own tests: \(outcomes.count) passed")
        } else {
            lines.append("its own tests: none (add tests.lua)")
        }
        return lines
    }

    /// The finished output (nil: unchanged) and rescale of one job, checked.
    private static func outcome(_ plugin: Plugin, _ job: PruneJob, _ what: String) throws -> (Tensor?, Double?) {
        let outcome = try plugin.prune(job)
        let result: Tensor
        switch outcome.result {
        case .unchanged: return (nil, nil)
        case .output(let tensor), .prunedDelta(let tensor): result = tensor
        }
        guard result.shape == job.base.shape else {
            throw PluginError("\(plugin.path): returned shape \(result.shape.shapeText) for \(what)")
        }
        guard result.dtype.isComputable else {
            throw PluginError("\(plugin.path): returned a \(result.dtype) tensor for \(what); expected floating point")
        }
        let stats = try LopperCore.stats(result)
        guard stats.nanCount == 0, stats.min.isFinite, stats.max.isFinite else {
            throw PluginError("\(plugin.path): produced NaN or infinite values for \(what)")
        }
        return (result, outcome.rescale)
    }

    /// A delta of `kind`: small positive (0.01 + 0.01 U), centred (0.02 (U - 0.5)),
    /// sparse (centred, three entries in four and every fourth row exactly 0), zero, or
    /// large (20 (U - 0.5)).
    static func delta(_ kind: DeltaKind, _ shape: [Int], key: RandomKey) throws -> Tensor {
        let noise = try uniform(shape, key: key)
        switch kind {
        case .small: return try add(try scale(noise, 0.01), 0.01)
        case .centred: return try scale(try add(noise, -0.5), 0.02)
        case .large: return try scale(try add(noise, -0.5), 20)
        case .zero: return try Tensor(zeros: shape, dtype: .f32)
        case .sparse:
            let values = try scale(try add(noise, -0.5), 0.02).floats()
            let columns = shape.count == 2 ? shape[1] : values.count
            return Tensor(values.enumerated().map { index, value in
                index % 4 == 0 && (index / columns) % 4 != 3 ? value : 0
            }, shape: shape)
        }
    }
}

extension Tensor {
    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: data, count: byteCount)) }
}
