#if canImport(Glibc)
import Glibc
#endif
import CTempPaths
import Synchronization

/// The bytes of one new file, appended in order through a block-aligned staging buffer.
/// Where the file system allows, each full buffer goes to the disk with O_DIRECT: no copy
/// into the page cache and little CPU, so on a small machine the writer thread leaves the
/// cores to the kernels, and `finish`'s fsync waits only for the device's own cache (on a
/// virtual disk, the host's: there about 1 s for 673 MB, which fdatasync every 128 MB on the
/// way did not shorten, the disk being the bound).
/// Elsewhere (tmpfs, some network file systems, or `LOPPER_DIRECT_WRITES=0`) the same
/// buffers are written through the page cache, with writeback started as they go so dirty
/// pages never pile up and throttle the writer.
final class StagedFileOutput {
    /// For messages.
    let path: String
    private var descriptor: Int32
    private let staging: UnsafeMutableRawPointer
    private var staged = 0
    private var direct: Bool
    /// Bytes handed to the file so far, and the part of them already handed to writeback.
    private var fileOffset = 0
    private var writebackStarted = 0
    /// Bytes that went to the file with O_DIRECT, and those of them written from the
    /// caller's memory without staging (for tests).
    private(set) var directBytes = 0, inPlaceBytes = 0

    /// Staging buffer size, and the most one write hands the disk: a multiple of every block
    /// size O_DIRECT may require. Each write waits for the disk, so it must be large enough to
    /// keep the device's queue full: on a virtio disk, 673 MB in 8 MB writes took 2.1-3.5 s
    /// and in 32 MB writes 1.65-1.75 s (`dd oflag=direct`).
    static let stagingBytes = 32 << 20
    static let alignment = 4096

    /// Whether new files try O_DIRECT (default: yes, unless `LOPPER_DIRECT_WRITES=0`).
    /// Tests turn it off to check that both paths write the same bytes.
    static var directWrites: Bool {
        get { directSetting.load(ordering: .relaxed) }
        set { directSetting.store(newValue, ordering: .relaxed) }
    }
    private static let directSetting = Atomic<Bool>(getenv("LOPPER_DIRECT_WRITES").map { String(cString: $0) != "0" } ?? true)

    /// Creates (truncates) `file`; messages name `path` (the name it will be renamed to).
    init(creating file: String, reportedAs path: String) throws {
        self.path = path
        descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SafetensorsError(path, "cannot create: \(String(cString: strerror(errno)))") }
        direct = Self.directWrites && lopper_set_direct(descriptor, 1) == 0
        staging = UnsafeMutableRawPointer.allocate(byteCount: Self.stagingBytes, alignment: Self.alignment)
    }

    deinit {
        close()
        staging.deallocate()
    }

    /// Appends `bytes`; full staging buffers are written on the way. A long span whose
    /// address lies at its file offset modulo the block size (a tensor copied unchanged from
    /// a mapped input whose layout the header lined up, see `SafetensorsWriter`) goes to the
    /// disk from where it is: its whole blocks skip the staging copy.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        let alignment = Self.alignment
        if direct, bytes.count >= Self.directSpanBytes,
           (Int(bitPattern: bytes.baseAddress!) &- (fileOffset + staged)) % alignment == 0 {
            offset = (alignment - (fileOffset + staged) % alignment) % alignment
            try stage(UnsafeRawBufferPointer(rebasing: bytes[0..<offset]))
            try writeStaged()
            let whole = (bytes.count - offset) / alignment * alignment
            offset += try writeInPlace(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + whole]))
        }
        try stage(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
    }

    /// Spans at least this long are written from the caller's memory where aligned.
    static let directSpanBytes = 1 << 20

    private func stage(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let piece = min(bytes.count - offset, Self.stagingBytes - staged)
            memcpy(staging + staged, bytes.baseAddress! + offset, piece)
            staged += piece
            offset += piece
            if staged == Self.stagingBytes { try writeStaged() }
        }
    }

    /// Writes what is staged, makes the file durable (fsync) and closes it.
    func finish() throws {
        if direct && staged % Self.alignment != 0 { try useBufferedWrites() }  // the tail is not a whole block
        try writeStaged()
        guard fsync(descriptor) == 0 || errno == EINVAL else {
            throw SafetensorsError(path, "cannot flush: \(String(cString: strerror(errno)))")
        }
        close()
    }

    /// Closes without flushing (the caller removes the file).
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor); descriptor = -1 }
    }

    /// Writes `bytes` (whole blocks at a block-aligned offset, nothing staged) straight from
    /// their memory; the count written, short only where the file system refused direct I/O
    /// (the rest is then staged as usual).
    private func writeInPlace(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        let done = try writeOut(bytes.baseAddress!, bytes.count, whileDirect: true)
        inPlaceBytes += done
        return done
    }

    private func writeStaged() throws {
        _ = try writeOut(staging, staged, whileDirect: false)
        staged = 0
        startWriteback()
    }

    /// The one write loop: `count` bytes from `base` at the file's end, at most a staging
    /// buffer a call; where the file system refuses direct I/O (alignment), the rest goes
    /// buffered, or, `whileDirect`, is left to the caller. Returns the count written.
    private func writeOut(_ base: UnsafeRawPointer, _ count: Int, whileDirect: Bool) throws -> Int {
        var done = 0
        while done < count && (direct || !whileDirect) {
            try WriteCancellation.check(path)
            let written = write(descriptor, base + done, Swift.min(count - done, Self.stagingBytes))
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EINVAL && direct { try useBufferedWrites(); continue }
                throw SafetensorsError(path, "write failed: \(String(cString: strerror(errno)))")
            }
            done += written
            fileOffset += written
            if direct { directBytes += written }
        }
        return done
    }

    private func useBufferedWrites() throws {
        guard lopper_set_direct(descriptor, 0) == 0 else {
            throw SafetensorsError(path, "write failed: cannot leave direct I/O: \(String(cString: strerror(errno)))")
        }
        direct = false
        writebackStarted = fileOffset
    }

    /// Buffered writes only: starts writeback of what was written since the last call,
    /// asynchronously, so the disk works while the next tensors are computed.
    private func startWriteback() {
        guard !direct, fileOffset - writebackStarted >= Self.stagingBytes else { return }
        lopper_start_writeback(descriptor, Int64(writebackStarted), Int64(fileOffset - writebackStarted))
        writebackStarted = fileOffset
    }
}
