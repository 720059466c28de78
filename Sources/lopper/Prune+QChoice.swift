import ArgumentParser
import Foundation
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

extension Prune {
    /// What `chooseQ` decided, and the temporary statistics file it wrote for the plugin.
    struct ChosenQ {
        var choice: QChoice
        var statisticsFile: TemporaryStatistics?
    }

    /// darex_q: chooses q before the pass (`DARExQPlanner`) and rewrites the settings; other
    /// methods: refuses the search options, which they would ignore.
    func chooseQ(_ plugin: PruneMethod, _ configuration: inout PruneConfiguration) throws -> ChosenQ? {
        guard plugin.name == "darex_q" else {
            if text.data != nil {
                throw ValidationError("--data is read by darex_q's q search; \(plugin.name) does not use it (statistics for wanda come from lopper calibrate: --calibration)")
            }
            if search.svg != nil { throw ValidationError("--svg plots darex_q's q search; \(plugin.name) has none") }
            return nil
        }
        if search.svg != nil, text.data == nil { throw ValidationError("--svg plots the q search, which needs --data FILE") }
        if text.data != nil, configuration.output == .adapter {
            throw ValidationError("--data: the q search prunes whole deltas, but --output adapter prunes the factors A and B; search with --output merged (or delta), then pass --set q=Q")
        }
        let settings = configuration.settings, schema = plugin.schema
        let names = try Checkpoint.finetuned(path: pair.finetuned, base: try Checkpoint(path: pair.base)).names
        let layers = try layerCount(of: names)
        let rateOf: (String) throws -> Double = { name in
            let values = try schema.resolve(settings, name: name, layer: layerIndex(of: name), layerCount: layers)
            guard let rate = values["rate"]?.number else { throw ValidationError("darex_q: no rate for \(name)") }
            return rate
        }
        let planner = DARExQPlanner(base: pair.base, finetuned: pair.finetuned, selection: configuration.selection,
                                    settings: configuration.settings, defaultRate: plugin.schema.spec("rate")?.defaultValue?.number,
                                    rateOf: rateOf,
                                    seed: seed, text: text, search: search, calibration: calibration,
                                    say: { line in if !quiet { print(line) } })
        // The settings as the plugin will see them (mode made explicit) are checked before any search.
        let explicit = configuration.settings.contains { $0.key == "mode" && $0.glob == nil }
        try plugin.schema.validate(configuration.settings + (explicit ? [] : [Setting(key: "mode", text: planner.modeName)]))
        let plan = try planner.plan(dryRun: dryRun)
        configuration.settings = plan.settings
        var chosen = ChosenQ(choice: plan.choice)
        if let statistics = plan.statistics, let out = outputs.out {
            let file = TemporaryStatistics(beside: out)
            try statistics.write(to: file.path, metadata: ["lopper.data": text.data ?? ""])
            configuration.calibrationPath = file.path
            chosen.statisticsFile = file
        }
        if !dryRun { configuration.extraMetadata["lopper.q_choice"] = try plan.choice.json() }
        return chosen
    }
}

/// Input statistics written for the plugin next to the output, removed after the run (or by a signal).
final class TemporaryStatistics {
    private let temporary: TemporaryPath
    var path: String { temporary.path }
    init(beside output: String) { temporary = TemporaryPath(beside: output, kind: "stats") }
    func remove() {
        try? FileManager.default.removeItem(atPath: temporary.path)
        temporary.release()
    }
}
