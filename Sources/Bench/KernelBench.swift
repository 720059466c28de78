import LopperCore
#if canImport(Glibc)
import Glibc
#endif

/// Core kernels on `elements`-element tensors: throughput and ratio to memcpy.
func benchKernels(elements: Int) {
    let f32 = try! uniform([elements], key: RandomKey(seed: 1, name: "a"))
    let g32 = try! uniform([elements], key: RandomKey(seed: 2, name: "b"))
    let bf16 = try! f32.converted(to: .bf16), other16 = try! g32.converted(to: .bf16)
    print("-- kernels, \(Parallel.threads) thread(s), memcpy \(fixed(memcpyThroughput(bytes: elements * 4) / 1e9, 6, 2)) GB/s (F32-sized copy)")
    let cases: [(String, Int, () throws -> Void)] = [
        ("convert BF16 -> F32", 6, { _ = try bf16.converted(to: .f32) }),
        ("convert F32 -> BF16", 6, { _ = try f32.converted(to: .bf16) }),
        ("add F32", 12, { _ = try add(f32, g32) }),
        ("scale F32", 8, { _ = try scale(f32, 0.5) }),
        ("axpy F32", 12, { _ = try axpy(2, f32, g32) }),
        ("delta BF16 -> F32", 8, { _ = try delta(bf16, other16) }),
        ("sum F32", 4, { _ = try sum(f32) }),
        ("norm F32", 4, { _ = try norm(f32) }),
        ("stats F32", 4, { _ = try stats(f32) }),
        ("kthLargest F32 (k = 1%)", 4, { _ = try kthLargest(f32, elements / 100) }),
        ("topKMask F32 (k = 1%)", 5, { _ = try topKMask(f32, elements / 100) }),
        ("histogram F32 (64 bins)", 4, { _ = try histogram(f32, bins: 64) }),
    ]
    for (name, bytesPerElement, body) in cases {
        report(name, bytesMoved: elements * bytesPerElement, seconds: bestTime(repeats: 3) { try! body() }, copyBytes: elements * 4)
    }
}

/// The selection kernels on every dispatch path of this CPU (same results, other speeds):
/// whole tensors (magnitude) and rows of 4096 (WANDA), keeping 10% as at rate 0.9.
/// `LOPPER_KERNELS` narrows it to the path it names (for profiling one path).
func benchSelection(elements: Int) {
    let f32 = try! uniform([elements], key: RandomKey(seed: 1, name: "a")), bf16 = try! f32.converted(to: .bf16)
    let rows = try! f32.reshaped([elements / 4096, 4096])
    print("-- selection, \(Parallel.threads) thread(s), memcpy \(fixed(memcpyThroughput(bytes: elements * 4) / 1e9, 6, 2)) GB/s (F32-sized copy)")
    let active = KernelPath.active
    defer { KernelPath.active = active }
    for path in getenv("LOPPER_KERNELS") == nil ? KernelPath.available : [active] {
        KernelPath.active = path
        let cases: [(String, Int, () throws -> Void)] = [
            ("kthLargest F32 (k = 10%), \(path) path", 4, { _ = try kthLargest(f32, elements / 10) }),
            ("topKMask F32 (k = 10%), \(path) path", 5, { _ = try topKMask(f32, elements / 10) }),
            ("topKMask BF16 (k = 10%), \(path) path", 3, { _ = try topKMask(bf16, elements / 10) }),
            ("topKMaskPerRow F32 (rows of 4096, k = 10%), \(path) path", 5, { _ = try topKMaskPerRow(rows, 410) }),
        ]
        for (name, bytesPerElement, body) in cases {
            report(name, bytesMoved: elements * bytesPerElement, seconds: bestTime(repeats: 3) { try! body() }, copyBytes: elements * 4)
        }
    }
}
