import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Work splitting for kernels. Work is cut into fixed-size chunks whose boundaries
/// depend only on the element count, never on the thread count, so any result that
/// is a function of (chunk, index) is the same on 1 thread or 16.
public enum Parallel {
    /// Elements per chunk; also the unit of per-chunk random streams.
    public static let chunkSize = 1 << 16

    /// Worker threads used by kernels. Defaults to `LOPPER_THREADS` or the core count.
    public static var threads: Int {
        get { configured.load(ordering: .relaxed) }
        set { configured.store(max(1, newValue), ordering: .relaxed) }
    }

    private static let configured = Atomic<Int>(defaultThreads())

    private static func defaultThreads() -> Int {
        if let text = getenv("LOPPER_THREADS"), let value = Int(String(cString: text)), value > 0 {
            return value
        }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Calls `body` once for each chunk `[start, end)` of `0..<count`, on up to
    /// `threads` threads. Small work runs inline.
    public static func forEachChunk(count: Int, chunk: Int = chunkSize,
                                    _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = (count + chunk - 1) / chunk
        let workers = min(threads, chunks)
        if workers <= 1 {
            for index in 0..<chunks { body(index * chunk..<min(count, (index + 1) * chunk)) }
            return
        }
        let next = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    if index >= chunks { break }
                    body(index * chunk..<min(count, (index + 1) * chunk))
                }
            }
        }
    }

    /// Calls `body(i)` for `i` in `0..<count` with the same worker policy;
    /// for per-row work where each item is already large.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachChunk(count: count, chunk: 1) { range in body(range.lowerBound) }
    }
}
