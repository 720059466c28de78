import LopperCore
#if canImport(Glibc)
import Glibc
#endif

/// Philox, Bernoulli masks and the fused DARE pass on BF16 inputs, 1 and 2 threads.
func benchRandom(elements: Int) {
    let saved = Parallel.threads
    defer { Parallel.threads = saved }
    let base = try! Tensor(zeros: [elements], dtype: .bf16)
    let finetuned = try! Tensor(zeros: [elements], dtype: .bf16)
    memset(finetuned.data, 0x3c, finetuned.byteCount)
    let key = RandomKey(seed: 1, name: "bench")
    for threads in [1, 2] {
        Parallel.threads = threads
        // The floor: read two BF16 tensors and write one, as a plain copy would.
        let copyBytes = elements * 2
        print("-- \(threads) thread(s), memcpy \(fixed(memcpyThroughput(bytes: copyBytes) / 1e9, 6, 2)) GB/s")
        report("uniform F32", bytesMoved: elements * 4,
               seconds: bestTime(repeats: 3) { _ = try! uniform([elements], key: key) }, copyBytes: copyBytes)
        report("bernoulliMask keep 0.01", bytesMoved: elements,
               seconds: bestTime(repeats: 3) { _ = try! bernoulliMask([elements], keep: 0.01, key: key) }, copyBytes: copyBytes)
        report("fused DARE BF16 (2 in + 1 out)", bytesMoved: elements * 6,
               seconds: bestTime(repeats: 3) {
                   _ = try! fusedDare(base: base, finetuned: finetuned, keep: 0.01, scale: 100, key: key)
               }, copyBytes: copyBytes)
        report("fused DARE BF16, divided by keep", bytesMoved: elements * 6,
               seconds: bestTime(repeats: 3) {
                   _ = try! fusedDare(base: base, finetuned: finetuned, keep: 0.01, rescale: .dividedBy(0.01), key: key)
               }, copyBytes: copyBytes)
        // What plugins get: `delta * mask / keep` on the kernel above, and an expression
        // off the DARE form on the general block evaluator.
        let delta = try! LazyTensor.delta(base: base, finetuned: finetuned)
        let mask = try! LazyTensor.bernoulli([elements], keep: 0.01, key: key)
        let masked = try! LazyTensor.binary(.mul, .lazy(delta), .lazy(mask))
        let dare = try! LazyTensor.binary(.div, .lazy(masked), .scalar(0.01))
        let general = try! LazyTensor.binary(.div, .lazy(try! LazyTensor.binary(.mul, .lazy(masked), .scalar(0.5))), .scalar(0.01))
        report("lazy delta * mask / keep (fused)", bytesMoved: elements * 6,
               seconds: bestTime(repeats: 3) { _ = try! dare.finish(base: base, output: .merged, dtype: .bf16) }, copyBytes: copyBytes)
        report("lazy delta * mask * 0.5 / keep (blocks)", bytesMoved: elements * 6,
               seconds: bestTime(repeats: 3) { _ = try! general.finish(base: base, output: .merged, dtype: .bf16) }, copyBytes: copyBytes)
        report("fused DARE BF16 keep 1 (no draws)", bytesMoved: elements * 6,
               seconds: bestTime(repeats: 3) {
                   _ = try! fusedDare(base: base, finetuned: finetuned, keep: 1, scale: 100, key: key)
               }, copyBytes: copyBytes)
        // Every dispatch path of the wide kernels on this CPU (same bits, other speeds).
        let active = KernelPath.active
        defer { KernelPath.active = active }
        for path in KernelPath.available {
            KernelPath.active = path
            report("fused DARE BF16, \(path) path", bytesMoved: elements * 6,
                   seconds: bestTime(repeats: 3) {
                       _ = try! fusedDare(base: base, finetuned: finetuned, keep: 0.01, scale: 100, key: key)
                   }, copyBytes: copyBytes)
            report("fused DARE BF16 + report figures, \(path) path", bytesMoved: elements * 6,
                   seconds: bestTime(repeats: 3) {
                       _ = try! fusedDareMeasured(base: base, finetuned: finetuned, keep: 0.01, rescale: .times(100), key: key)
                   }, copyBytes: copyBytes)
            report("uniform F32, \(path) path", bytesMoved: elements * 4,
                   seconds: bestTime(repeats: 3) { _ = try! uniform([elements], key: key) }, copyBytes: copyBytes)
        }
    }
}
