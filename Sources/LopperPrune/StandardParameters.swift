/// The parameters the host owns (plugin contract v2), added to every plugin's schema:
/// `rate` and `layer_scale` for every method; for `score` methods also the selection
/// (`granularity`, `n`, `m`) and the rescale (`rescale`, `q`). A plugin sets their defaults with its
/// `defaults` table and never declares them itself.
public enum StandardParameters {
    public static let common = ["rate", "layer_scale"]
    public static let score = ["granularity", "n", "m", "rescale", "q"]

    /// The host's parameters for a method with (`score`) or without a score hook, with
    /// `defaults` (already type-checked by the caller's schema) replacing the built-in ones.
    public static func specs(score: Bool, defaults: [String: ParamValue] = [:]) -> [ParamSpec] {
        var specs = [
            ParamSpec(name: "rate", type: .number, defaultValue: .number(0.9), min: 0, max: 1,
                      doc: "drop rate p: the fraction of delta entries removed"),
            // LiNeS's layer scaling as a schedule: see Plugin+LayerScale.swift and Docs/plugins.md.
            ParamSpec(name: "layer_scale", type: .number, defaultValue: .number(1),
                      doc: "factor on the pruned delta, after the method; a per-layer schedule such as [0.5, 1] is LiNeS's layer scaling"),
        ]
        if score {
            specs += [
                ParamSpec(name: "granularity", type: .string, defaultValue: .string(Granularity.tensor.rawValue),
                          choices: Granularity.allCases.map(\.rawValue),
                          doc: "where the top 1 - rate are kept: whole tensor, each row, n of m, whole rows or columns, or over the whole model"),
                ParamSpec(name: "n", type: .integer, defaultValue: .number(2), min: 1, doc: "n of n:m",
                          onlyWith: ParamCondition(key: "granularity", values: ["nm"])),
                ParamSpec(name: "m", type: .integer, defaultValue: .number(4), min: 1, doc: "m of n:m",
                          onlyWith: ParamCondition(key: "granularity", values: ["nm"])),
                ParamSpec(name: "rescale", type: .string, defaultValue: .string(RescaleRule.none.rawValue),
                          choices: RescaleRule.allCases.map(\.rawValue),
                          doc: "factor for kept entries: none, dare 1/(1-p), q 1/q, l1 norm matching"),
                ParamSpec(name: "q", type: .number, min: 0.000001, max: 1, doc: "q of rescale=q",
                          onlyWith: ParamCondition(key: "rescale", values: ["q"])),
            ]
        }
        for index in specs.indices { if let value = defaults[specs[index].name] { specs[index].defaultValue = value } }
        return specs
    }
}
