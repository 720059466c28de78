import LopperCore
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

/// Process CPU seconds (all threads).
func cpuNow() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

/// CPU seconds of the run `bestTime` picked last. On a shared machine wall time also
/// counts other processes' turns; CPU time over wall time shows how many cores we had.
nonisolated(unsafe) var lastBestCPU = 0.0

/// Best-of-`repeats` wall time of `body`, after one warm-up run.
func bestTime(repeats: Int = 5, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = now(), cpuStart = cpuNow()
        body()
        let wall = now() - start
        if wall < best { best = wall; lastBestCPU = cpuNow() - cpuStart }
    }
    return best
}

/// Throughput of a plain memcpy moving `bytes` (read `bytes`, write `bytes`), split
/// over the kernel threads like the kernels are: the baseline every ratio refers to.
func memcpyThroughput(bytes: Int) -> Double {
    let source = try! Storage(byteCount: bytes)
    let target = try! Storage(byteCount: bytes)
    memset(source.bytes, 1, bytes)
    let seconds = bestTime {
        Parallel.forEachChunk(count: bytes, chunk: 1 << 22) { range in
            memcpy(target.bytes + range.lowerBound, source.bytes + range.lowerBound, range.count)
        }
    }
    return Double(2 * bytes) / seconds
}

/// One row of the report: a kernel that moved `bytesMoved` (read + written) in `seconds`,
/// against a memcpy of `copyBytes` timed right after it, so that both see the machine in
/// the same state (other work on a shared machine moves a baseline taken once by 2x).
func report(_ name: String, bytesMoved: Int, seconds: Double, copyBytes: Int) {
    let cpu = lastBestCPU, baseline = memcpyThroughput(bytes: copyBytes)
    let throughput = Double(bytesMoved) / seconds
    let line = name + String(repeating: " ", count: max(1, 44 - name.count))
    print(line + fixed(seconds * 1e3, 8, 2) + " ms " + fixed(throughput / 1e9, 7, 2) + " GB/s  "
          + fixed(throughput / baseline, 5, 2) + "x memcpy (" + fixed(baseline / 1e9, 5, 1) + " GB/s)  (cpu " + fixed(cpu * 1e3, 7, 1) + " ms)")
}

/// `value` with `decimals` digits after the point, right-aligned in `width` columns.
func fixed(_ value: Double, _ width: Int, _ decimals: Int) -> String {
    var text = String(value.isFinite ? (value * pow(10, Double(decimals))).rounded() / pow(10, Double(decimals)) : value)
    if let dot = text.firstIndex(of: "."), value.isFinite {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < decimals { text += String(repeating: "0", count: decimals - have) }
    }
    return String(repeating: " ", count: max(0, width - text.count)) + text
}
