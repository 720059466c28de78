import Foundation
import LopperCore
import LopperPrune

/// The properties a plugin declares (`properties = { unbiased = true }`), tested.
extension PluginCheck {
    static let propertySeeds = 200

    static func checkProperty(_ property: String, _ plugin: Plugin) throws -> String {
        switch property {
        case "unbiased": return try checkUnbiased(plugin)
        default: throw PluginError("\(plugin.path): no check for property '\(property)'")
        }
    }

    /// E[D'] = D, tested over `propertySeeds` seeds at the default parameters on a
    /// 32 x 64 delta of mixed signs: for the whole tensor, its positive and negative
    /// entries, and its larger and smaller half by magnitude, the mean over seeds of
    /// sum(D') must be within 5 standard errors (estimated from the seeds) of sum(D),
    /// plus 1e-4 of sum|D| for rounding. A method biased in sign or magnitude, or one
    /// that forgets its rescale, misses by far more; a deterministic one (no spread)
    /// must match to rounding.
    static func checkUnbiased(_ plugin: Plugin) throws -> String {
        let name = "model.layers.0.mlp.up_proj.weight", shape = [32, 64]
        let base = try uniform(shape, key: RandomKey(seed: 11, name: "base"))
        let delta = try scale(try add(try uniform(shape, key: RandomKey(seed: 11, name: "delta")), -0.3), 0.01)
        let finetuned = try add(base, delta)
        let values = delta.floats().map(Double.init)
        let median = values.map(Swift.abs).sorted()[values.count / 2]
        let groups: [(String, [Bool])] = [
            ("all entries", values.map { _ in true }), ("positive entries", values.map { $0 > 0 }), ("negative entries", values.map { $0 < 0 }),
            ("larger half by |D|", values.map { Swift.abs($0) >= median }), ("smaller half by |D|", values.map { Swift.abs($0) < median }),
        ]
        let parameters = try plugin.schema.resolve([], name: name, layer: 0, layerCount: 2)
        var sums = [[Double]](repeating: [], count: groups.count)
        for seed in 1...UInt64(propertySeeds) {
            let job = PruneJob(name: name, layerCount: 2, base: base, finetuned: finetuned, parameters: parameters,
                               seed: seed, output: .delta, outputDType: .f32)
            let pruned = try plugin.run(job).output.floats()
            for (index, group) in groups.enumerated() {
                sums[index].append(zip(pruned, group.1).reduce(0.0) { $0 + ($1.1 ? Double($1.0) : 0) })
            }
        }
        for (index, group) in groups.enumerated() {
            let expected = zip(values, group.1).reduce(0.0) { $0 + ($1.1 ? $1.0 : 0) }
            let scale = zip(values, group.1).reduce(0.0) { $0 + ($1.1 ? Swift.abs($1.0) : 0) }
            let count = Double(sums[index].count), mean = sums[index].reduce(0, +) / count
            let variance = sums[index].reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)
            let standardError = (variance / count).squareRoot()
            if Swift.abs(mean - expected) > 5 * standardError + 1e-4 * scale {
                let missed = standardError > 0 ? String(format: "%.1f standard errors", Swift.abs(mean - expected) / standardError) : "with no spread over seeds"
                throw PluginError("\(plugin.path): declares unbiased = true, but E[D'] != D: over \(propertySeeds) seeds the sum of D' over its \(group.0) averages "
                                  + String(format: "%.6g ± %.2g, the delta's is %.6g", mean, standardError, expected) + " (off by \(missed))")
            }
        }
        return "unbiased: E[D'] = D within 5 standard errors over \(propertySeeds) seeds (all, positive, negative, larger and smaller entries)"
    }
}
