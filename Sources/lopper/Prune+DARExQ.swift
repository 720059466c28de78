import ArgumentParser
import Foundation
import LopperCalibration
import LopperCore
import LopperIO
import LopperModels
import LopperPrune

/// How `lopper prune --method darex_q` chooses q before the streaming pass, as the DAREx paper
/// runs it: q given: fixed. mode=search (the default with --data): the global q searched on the
/// objective (`QSearch`, candidates in memory). mode=analytical: per-tensor q's from the bound with
/// the input means of --data (or --calibration), eta searched on the objective unless given.
/// Neither q nor --data: the closed form, with a note. The chosen q's become `mode=fixed`
/// settings (one per tensor for analytical), so the streamed output holds exactly the masks and
/// rescales of the chosen candidate for --seed; the choice itself goes into the report and metadata.
struct DARExQPlanner {
    let base: String, finetuned: String
    let selection: TensorSelection
    let settings: [Setting]
    let defaultRate: Double?
    /// A tensor's resolved drop rate (globs and schedules applied).
    let rateOf: (String) throws -> Double
    let seed: UInt64
    let text: TextOptions
    let search: QSearchOptions
    let calibration: String?
    let say: (String) -> Void

    struct Plan {
        var settings: [Setting]
        var choice: QChoice
        /// Input statistics to hand the plugin (the closed form with --data).
        var statistics: InputStatistics?
    }

    /// Keys of the search and of the analytical bound: for the whole model, resolved here, and not
    /// passed on to the plugin (which then runs mode=fixed).
    static let searchKeys: Set<String> = ["mode", "q_min", "q_max", "eta_min", "eta_max", "steps", "eta", "gamma"]

    func plan(dryRun: Bool) throws -> Plan {
        let mode = modeName, resolvedHere = mode == "search" || mode == "analytical"
        if resolvedHere, let setting = settings.first(where: { $0.glob != nil && Self.searchKeys.contains($0.key) }) {
            throw ValidationError("darex_q: '\(setting.glob!.pattern):\(setting.key)' — mode=\(mode) takes \(setting.key) for the whole model; set it without a glob")
        }
        // Fixed and closed form run in the plugin as given (mode made explicit); per-tensor modes stay.
        let withMode = settings.filter { !($0.key == "mode" && $0.glob == nil) } + [Setting(key: "mode", text: mode)]
        var choice = QChoice(how: mode)
        if dryRun { return Plan(settings: withMode, choice: choice) }
        var kept = settings.filter { !Self.searchKeys.contains($0.key) }
        switch mode {
        case "fixed":
            if text.data != nil { fputs("lopper: warning: --data is not used: q is fixed (drop q to search it)\n", stderr) }
            choice.q = number("q")
            return Plan(settings: withMode, choice: choice)
        case "closed_form":
            var plan = Plan(settings: withMode, choice: choice)
            if text.data != nil {
                let search = try makeSearch(rate: defaultRate ?? 0.99)
                plan.statistics = try search.inputStatistics(try calibrationText(search))
                plan.choice.notes.append("input means from --data")
            } else if calibration == nil, global("mode") == nil {
                let note = "q chosen in closed form without data; --data FILE searches q on text (better results)"
                fputs("lopper: note: \(note)\n", stderr)
                plan.choice.notes.append(note)
            }
            return plan
        case "search":
            guard text.data != nil else { throw ValidationError("darex_q mode=search needs --data FILE (text, or labeled records for --metric accuracy)") }
            let rate = try singleRate()
            let qSearch = try makeSearch(rate: rate)
            let grid = try QGridSearch.Grid.q(rate: rate, lower: number("q_min"), upper: number("q_max"), steps: integer("steps"))
            describe(&choice, qSearch, grid: grid, searched: "q")
            say("searching q for p = \(rate) (\(formatted(grid.lower, 4)) to \(formatted(grid.upper, 4)), \(grid.steps) geometric steps) on \(qSearch.objective.name), seeds \(qSearch.seeds.map(String.init).joined(separator: ","))")
            let result = try qSearch.run(grid: grid) { say("  q = \(formatted($0.q, 5))   \(qSearch.objective.name) \(scientific($0.value))") }
            choice.result = result
            choice.q = result.best.q
            say("chose q = \(formatted(result.best.q, 5)): \(qSearch.objective.name) \(scientific(result.best.value)) (DARE: \(scientific(result.dare?.value ?? .nan)))")
            kept.append(Setting(key: "mode", text: "fixed"))
            kept.append(Setting(key: "q", text: String(result.best.q)))
            return Plan(settings: kept, choice: choice)
        case "analytical":
            // Per-tensor rates are fine for the bound; searching eta needs one rate for the candidates.
            let gamma = number("gamma") ?? 0.05, searchesEta = number("eta") == nil && text.data != nil
            let rate = searchesEta ? try singleRate() : (defaultRate ?? 0.99)
            let qSearch = try text.data.map { _ in try makeSearch(rate: rate) }
            let statistics: ((String) throws -> Tensor?)?
            if let qSearch {
                let recorded = try qSearch.inputStatistics(try calibrationText(qSearch))
                statistics = { recorded.inputMean($0) }
                choice.notes.append("input means from --data")
            } else if let calibration {
                let file = try CalibrationStatistics(path: calibration)
                statistics = { try file.statistics(for: $0)["input_mean"] }
                choice.notes.append("input means from --calibration")
            } else {
                statistics = nil
                choice.notes.append("no calibration statistics: inputs taken as 1")
            }
            let analytical = try AnalyticalQ(basePath: base, finetunedPath: finetuned, selection: selection,
                                             rate: searchesEta ? { _ in rate } : rateOf, inputMean: statistics)
            var eta = number("eta")
            if eta == nil, let qSearch {
                let grid = try QGridSearch.Grid(lower: number("eta_min") ?? 0.01, upper: number("eta_max") ?? 10, steps: integer("steps") ?? 16)
                describe(&choice, qSearch, grid: grid, searched: "eta")
                say("searching eta for p = \(rate) (\(formatted(grid.lower, 4)) to \(formatted(grid.upper, 4)), \(grid.steps) geometric steps) on \(qSearch.objective.name), seeds \(qSearch.seeds.map(String.init).joined(separator: ","))")
                let result = try qSearch.runEta(grid: grid, qs: { analytical.qs(eta: $0, gamma: gamma) }) {
                    say("  eta = \(formatted($0.q, 5))   \(qSearch.objective.name) \(scientific($0.value))")
                }
                choice.result = result
                eta = result.best.q
                if abs(log(result.best.q / grid.lower)) < 1e-9 || abs(log(result.best.q / grid.upper)) < 1e-9 {
                    let note = "the best eta is at the edge of the grid (\(formatted(grid.lower, 4)) to \(formatted(grid.upper, 4))): widen it with --set eta_min=/eta_max="
                    fputs("lopper: note: \(note)\n", stderr)
                    choice.notes.append(note)
                }
                say("chose eta = \(formatted(result.best.q, 5)): \(qSearch.objective.name) \(scientific(result.best.value)) (DARE: \(scientific(result.dare?.value ?? .nan)))")
            } else if eta == nil {
                choice.notes.append("eta = 1 without data; --data FILE searches eta")
            }
            let qs = analytical.qs(eta: eta ?? 1, gamma: gamma)
            choice.eta = eta ?? 1
            choice.qMean = qs.values.reduce(0, +) / Double(max(1, qs.count))
            choice.qMin = qs.values.min(); choice.qMax = qs.values.max()
            say("analytical q for \(qs.count) tensors (eta = \(formatted(eta ?? 1, 4))): mean \(formatted(choice.qMean ?? 1, 5)), from \(formatted(choice.qMin ?? 1, 5)) to \(formatted(choice.qMax ?? 1, 5))")
            kept.append(Setting(key: "mode", text: "fixed"))
            for name in analytical.prunable { kept.append(Setting(glob: Self.literalGlob(name), key: "q", text: String(qs[name] ?? 1))) }
            return Plan(settings: kept, choice: choice)
        default:
            return Plan(settings: withMode, choice: choice)
        }
    }

    /// The mode asked for, or implied: q given -> fixed; --data -> search; else closed_form.
    var modeName: String {
        if let mode = global("mode") { return mode }
        if global("q") != nil { return "fixed" }
        return text.data != nil ? "search" : "closed_form"
    }

    private func global(_ key: String) -> String? { settings.last { $0.glob == nil && $0.key == key }?.text.trimmingCharacters(in: .whitespaces) }
    private func number(_ key: String) -> Double? { global(key).flatMap(Double.init) }
    private func integer(_ key: String) -> Int? { global(key).flatMap(Int.init) }

    private func singleRate() throws -> Double {
        if settings.contains(where: { $0.key == "rate" && $0.glob != nil }) {
            throw ValidationError("darex_q: a q search needs one rate for every tensor (got a per-tensor rate)")
        }
        guard let text = global("rate") else {
            guard let defaultRate else { throw ValidationError("darex_q: give --set rate=P") }
            return defaultRate
        }
        guard let rate = Double(text) else { throw ValidationError("darex_q: a q search needs one rate for every tensor (got rate=\(text))") }
        return rate
    }

    private func makeSearch(rate: Double) throws -> QSearch {
        let objective = try search.objective(text, base: base, finetuned: finetuned)
        return try QSearch(basePath: base, finetunedPath: finetuned, rate: rate, seeds: search.seedList(defaultSeeds: [seed, seed &+ 1, seed &+ 2]),
                           objective: objective, selection: selection, dropOutlierSeed: search.dropOutlierSeed)
    }

    /// The sequences of --data, labeled or not, as calibration text.
    private func calibrationText(_ search: QSearch) throws -> CalibrationText {
        switch search.objective {
        case .outputChange(let text), .perplexity(let text): return text
        case .labeled(let records, _): return CalibrationText(sequences: records.sequences)
        case .custom: throw ValidationError("darex_q: input statistics need text")
        }
    }

    private func describe(_ choice: inout QChoice, _ search: QSearch, grid: QGridSearch.Grid, searched: String) {
        choice.searched = searched
        choice.metric = search.objective.name
        choice.higherIsBetter = search.objective.higherIsBetter
        choice.grid = grid
        choice.seeds = search.seeds
        choice.dropOutlierSeed = search.dropOutlierSeed
        if case .outputChange = search.objective {} else { choice.finetunedValue = try? search.finetunedScore() }
    }

    /// A glob matching exactly `name` (its glob characters in classes).
    static func literalGlob(_ name: String) -> String {
        var out = ""
        for character in name { out += "*?[".contains(character) ? "[\(character)]" : String(character) }
        return out
    }
}
