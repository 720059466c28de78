// lopper-bench: kernel throughput against a plain memcpy of the same bytes,
// measured in the same run. Run through Scripts/bench (release build).
//   lopper-bench [ELEMENTS] [SECTION...]   sections: kernels, selection, random, lua (default all);
//   models (only when named: a forward pass, see Scripts/bench_models)
import LopperCore

let arguments = Array(CommandLine.arguments.dropFirst())
let elements = arguments.first.flatMap { Int($0) } ?? (64 << 20)
let sections = Set(arguments.dropFirst(arguments.first.flatMap { Int($0) } == nil ? 0 : 1))
func wanted(_ section: String) -> Bool { sections.isEmpty || sections.contains(section) }
print("lopper-bench: \(elements) elements per tensor, \(Parallel.threads) threads")
if wanted("kernels") { benchKernels(elements: elements) }
if wanted("selection") { benchSelection(elements: elements) }
if wanted("random") { benchRandom(elements: elements) }
if wanted("lua") { benchLua(elements: min(elements, 16 << 20)) }
if sections.contains("models") { benchModels() }
