// lopper-bench: kernel throughput against a plain memcpy of the same bytes,
// measured in the same run. Run through Scripts/bench (release build).
import LopperCore

let arguments = CommandLine.arguments.dropFirst()
let elements = arguments.first.flatMap { Int($0) } ?? (64 << 20)
print("lopper-bench: \(elements) elements per tensor, \(Parallel.threads) threads")
benchKernels(elements: elements)
benchRandom(elements: elements)
benchLua(elements: min(elements, 16 << 20))
