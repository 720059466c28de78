#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Bytes behind a tensor: a 64-byte-aligned heap buffer that this object owns, or a
/// view into a memory-mapped file that stays mapped as long as any view lives.
public final class Storage: @unchecked Sendable {
    public static let alignment = 64

    public let bytes: UnsafeMutableRawPointer
    public let byteCount: Int
    private let owner: Owner

    private enum Owner {
        case heap
        case mapping(MappedFile)
    }

    /// A 64-byte-aligned buffer, zero-filled unless `zeroed` is false (for kernel
    /// outputs that overwrite every byte). Throws when the system refuses the memory.
    public init(byteCount: Int, zeroed: Bool = true) throws {
        guard byteCount >= 0, byteCount <= Int.max - (1 << 16) else { throw StorageError.badSize(byteCount) }
        let rounded = BufferCache.roundedSize(byteCount)
        guard let raw = BufferCache.shared.take(rounded) else { throw StorageError.outOfMemory(byteCount) }
        if zeroed { memset(raw, 0, rounded) }
        bytes = raw
        self.byteCount = byteCount
        owner = .heap
        Storage.liveHeap.add(1, ordering: .relaxed)
    }

    /// A view of `byteCount` bytes at `offset` of a mapped file.
    public init(mapping file: MappedFile, offset: Int, byteCount: Int) {
        precondition(offset >= 0 && byteCount >= 0 && offset + byteCount <= file.length,
                     "view outside the mapping of \(file.path)")
        bytes = file.base.advanced(by: offset)
        self.byteCount = byteCount
        owner = .mapping(file)
    }

    deinit {
        if case .heap = owner {
            BufferCache.shared.give(bytes, size: BufferCache.roundedSize(byteCount))
            Storage.liveHeap.subtract(1, ordering: .relaxed)
        }
    }

    /// True when these bytes belong to a file mapping (read-only).
    public var isMapped: Bool {
        if case .mapping = owner { return true }
        return false
    }

    /// Heap buffers alive right now; tests use it to prove that nothing leaks.
    public static var liveHeapCount: Int { liveHeap.load(ordering: .relaxed) }
    private static let liveHeap = Atomic<Int>(0)
}

public enum StorageError: Error, CustomStringConvertible {
    case outOfMemory(Int)
    case badSize(Int)
    public var description: String {
        switch self {
        case .outOfMemory(let bytes): return "out of memory: the system refused \(bytes) bytes"
        case .badSize(let bytes): return "cannot allocate \(bytes) bytes"
        }
    }
}

/// A read-only memory mapping of a whole file. Unmapped when the last view goes.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeMutableRawPointer
    public let length: Int

    public enum Failure: Error, CustomStringConvertible {
        case open(String, String)
        case map(String, String)
        case notRegular(String, String)
        public var description: String {
            switch self {
            case .notRegular(let path, let what): return "\(path): is \(what), not a regular file"
            case .open(let path, let why): return "\(path): cannot open: \(why)"
            case .map(let path, let why): return "\(path): cannot map: \(why)"
            }
        }
    }

    /// Maps `path` read-only with sequential access advice.
    public init(path: String) throws {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files map.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.open(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure.open(path, String(cString: strerror(errno))) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw Failure.notRegular(path, "a folder")
        case S_IFIFO: throw Failure.notRegular(path, "a FIFO")
        default: throw Failure.notRegular(path, "a special file")
        }
        let size = Int(info.st_size)
        self.path = path
        length = size
        if size == 0 {
            // mmap refuses empty files; a 1-byte anonymous page stands in.
            base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            isAnonymous = true
            return
        }
        let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw Failure.map(path, String(cString: strerror(errno)))
        }
        _ = madvise(pointer, size, MADV_SEQUENTIAL)
        base = pointer
        isAnonymous = false
    }

    private let isAnonymous: Bool

    /// Drops the resident pages of bytes `range` from this process (they stay in the
    /// page cache, and reading them again faults them back in): streaming passes call it
    /// after each tensor so resident memory stays near one tensor, not the model.
    public func releasePages(_ range: Range<Int>) {
        guard !isAnonymous else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = Swift.min(length, range.upperBound) / page * page
        guard end > start else { return }
        _ = madvise(base + start, end - start, MADV_DONTNEED)
    }

    deinit {
        if isAnonymous { base.deallocate() } else { munmap(base, length) }
    }
}

/// Large buffers freed by tensors wait here for the next tensor of the same size.
/// Streaming allocates and frees tensors of similar sizes over and over; fresh pages
/// would be faulted in and zeroed by the kernel every time, which costs more than the
/// kernels themselves. The cache is bounded, so peak memory stays a small multiple of
/// the largest tensor.
final class BufferCache: @unchecked Sendable {
    static let shared = BufferCache()
    /// Buffers from here up are cached; smaller ones go straight back to malloc.
    static let minimumCached = 1 << 20
    static let maximumCachedBytes = 1 << 30
    static let maximumPerSize = 4

    private let lock = Mutex<[Int: [UnsafeMutableRawPointer]]>([:])
    private let cachedBytes = Atomic<Int>(0)

    /// Sizes are rounded to 64 bytes, and large ones to 64 KiB so that near sizes share.
    static func roundedSize(_ byteCount: Int) -> Int {
        let granule = byteCount >= minimumCached ? 1 << 16 : Storage.alignment
        return max(Storage.alignment, (byteCount + granule - 1) / granule * granule)
    }

    func take(_ size: Int) -> UnsafeMutableRawPointer? {
        if size >= Self.minimumCached,
           let cached = lock.withLock({ table -> UnsafeMutableRawPointer? in table[size]?.popLast() }) {
            cachedBytes.subtract(size, ordering: .relaxed)
            return cached
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, Storage.alignment, size) == 0 else { return nil }
        return raw
    }

    func give(_ pointer: UnsafeMutableRawPointer, size: Int) {
        if size >= Self.minimumCached, cachedBytes.load(ordering: .relaxed) + size <= Self.maximumCachedBytes {
            let kept = lock.withLock { table -> Bool in
                guard table[size, default: []].count < Self.maximumPerSize else { return false }
                table[size, default: []].append(pointer)
                return true
            }
            if kept { cachedBytes.add(size, ordering: .relaxed); return }
        }
        free(pointer)
    }
}
