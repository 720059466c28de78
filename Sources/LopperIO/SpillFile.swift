import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LopperCore

/// A scratch file beside an output (`.NAME.spill-PID`) for tensors whose sizes are known
/// only once they are made (an iterator's tensors in `lopper.save`, the parts of a sparse
/// delta), written before the output's header can be planned and mapped back afterwards.
public final class SpillFile {
    private let temporary: TemporaryPath
    public var path: String { temporary.path }
    public private(set) var size = 0
    private var descriptor: Int32

    public init(beside output: String) throws {
        // Registered, so a signal during the write removes it too.
        temporary = TemporaryPath(beside: output, kind: "spill")
        descriptor = open(temporary.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SafetensorsError(output, "cannot create a temporary file: \(String(cString: strerror(errno)))") }
    }

    /// Appends the tensor's bytes; returns their offset in the file.
    @discardableResult
    public func append(_ tensor: Tensor) throws -> Int {
        var offset = 0
        let bytes = UnsafeRawPointer(tensor.data), start = size
        while offset < tensor.byteCount {
            try WriteCancellation.check(path)
            let written = Glibc.write(descriptor, bytes + offset, min(tensor.byteCount - offset, 1 << 24))
            if written < 0 {
                if errno == EINTR { continue }
                throw SafetensorsError(path, "write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        size += tensor.byteCount
        return start
    }

    public func map() throws -> MappedFile { try MappedFile(path: path) }

    /// Closes and unlinks; live mappings keep their pages until released.
    public func remove() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        unlink(path)
        temporary.release()
    }

    deinit { remove() }
}
