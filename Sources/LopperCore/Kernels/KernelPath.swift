import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The instruction set of the wide kernels (Philox and the fused DARE passes, in
/// Sources/CKernels): the widest this CPU has, chosen at run time so that the portable
/// build runs anywhere. Every path gives the same bits; tests force each one, and
/// `LOPPER_KERNELS=portable|avx2|avx512` asks for a narrower one (benchmarks).
public enum KernelPath: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    /// The Swift kernels on the x86-64 baseline (SSE2).
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    /// The widest path this CPU (and its operating system) supports.
    public static let widest = KernelPath(rawValue: Int(ck_cpu_level())) ?? .portable

    /// Every path this CPU can run, narrowest first.
    public static var available: [KernelPath] { allCases.filter { $0 <= widest } }

    /// The path kernels take now; setting a path the CPU lacks takes the widest it has.
    public static var active: KernelPath {
        get { KernelPath(rawValue: selected.load(ordering: .relaxed)) ?? .portable }
        set { selected.store(min(newValue, widest).rawValue, ordering: .relaxed) }
    }

    private static let selected = Atomic<Int>(requested().rawValue)

    private static func requested() -> KernelPath {
        guard let text = getenv("LOPPER_KERNELS").map({ String(cString: $0) }),
              let path = allCases.first(where: { $0.description == text }) else { return widest }
        return min(path, widest)
    }

    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    public static func < (a: KernelPath, b: KernelPath) -> Bool { a.rawValue < b.rawValue }
}
