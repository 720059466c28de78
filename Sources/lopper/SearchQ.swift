import ArgumentParser
import Foundation
import LopperIO
import LopperModels
import LopperCalibration
import LopperPrune

struct SearchQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-q",
        abstract: "Find DAREx-q's global rescale q on calibration text or labeled records.",
        discussion: """
        For drop rate p, tries q on a grid spaced geometrically from 1-p (plain DARE) up to 1 (16 points, \
        stopping after 3 steps without improvement), then a 10x finer grid around the best; each q is scored \
        by --metric, averaged over --seeds: the output change between the pruned and the fine-tuned model on \
        the text (encoders: mean |last hidden state difference|; decoders: MSE of the fine-tuned model's \
        top-5 logits), accuracy or mcc of a classifier on labeled records, or a decoder's perplexity. \
        Candidate models are built in memory (F32), so this suits models that fit in memory. \
        `lopper prune --method darex_q --data FILE` runs the same search and prunes with its result in one command.

        Example:
          lopper search-q --base llama --finetuned llama-math --data calib.jsonl --rate 0.99
        """)

    @OptionGroup(title: "Model pair") var pair: ModelPairOptions
    @OptionGroup(title: "Selection") var selection: SelectionOptions
    @OptionGroup(title: "Text") var text: TextOptions
    @OptionGroup(title: "Threads") var threads: ThreadOptions
    @Option(help: "Drop rate p.") var rate: Double
    @OptionGroup(title: "Search") var search: QSearchOptions
    @Flag(help: "Print the curve and the result as JSON on stdout instead of lines.") var json = false
    @Option(help: "Also write the curve and the result as JSON to this file.") var report: String?
    @Flag(help: "Replace an existing --report file.") var overwrite = false

    func run() throws {
        try reportingErrors {
            threads.apply()
            let base = pair.base, finetuned = pair.finetuned
            var paths = OutputGuard(overwrite: overwrite)
            pair.register(in: &paths)
            self.text.register(in: &paths)
            paths.output("--report", report, .file)
            paths.output("--svg", search.svg, .file)
            try paths.check()
            let seedList = search.seedList(defaultSeeds: [0, 1, 2])
            let objective = try search.objective(self.text, base: base, finetuned: finetuned)
            let search = try QSearch(basePath: base, finetunedPath: finetuned, rate: rate, seeds: seedList, objective: objective,
                                     selection: selection.selection, dropOutlierSeed: self.search.dropOutlierSeed)
            let say: (String) -> Void = { line in if !json { print(line) } }
            let name = objective.name
            say("searching q for p = \(rate) over \(search.prunable.count) tensors on \(name), seeds \(seedList.map(String.init).joined(separator: ","))")
            let result = try search.run { point in
                say("  q = \(formatted(point.q, 5))   \(name) \(scientific(point.value))")
            }
            say("DARE (q = \(formatted(1 - rate, 5))): \(scientific(result.dare?.value ?? .nan)); best q = \(formatted(result.best.q, 5)): \(scientific(result.best.value))")
            var choice = QChoice(how: "search")
            choice.searched = "q"; choice.metric = name; choice.result = result; choice.seeds = seedList; choice.q = result.best.q
            try self.search.writeChart(choice, title: "q search, p = \(rate)")
            say("prune with: lopper prune --base \(base) --finetuned \(finetuned) --method darex_q --set rate=\(rate) --set mode=fixed --set q=\(result.best.q) --seed \(seedList[0]) --out OUT")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let encoded = try encoder.encode(result)
            if json { print(String(decoding: encoded, as: UTF8.self)) }
            if let report { try writeFileAtomically(encoded, to: report) }
        }
    }
}
