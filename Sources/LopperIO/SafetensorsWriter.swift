#if canImport(Glibc)
import Glibc
#endif
import LopperCore

/// Writes one safetensors file, streaming: the header is planned first from names,
/// dtypes and shapes, then tensors are written one by one in that order, so a large
/// model never sits in memory. The file is written under a temporary name in the same
/// folder and renamed into place by `finish()`; otherwise it is removed.
public final class SafetensorsWriter {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public init(name: String, dtype: DType, shape: [Int]) { self.name = name; self.dtype = dtype; self.shape = shape }
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    public let path: String
    public let entries: [Entry]
    private let temporary: TemporaryPath
    private let output: StagedFileOutput
    private var next = 0
    private var finished = false

    /// Opens `path` for writing `entries` with `metadata` (`format: pt` is always added).
    /// With `dataStart` (a multiple of 8), the header is padded so that the data section
    /// starts at that offset modulo `StagedFileOutput.alignment`: tensors copied unchanged
    /// from an input laid out alike then go to the disk straight from its mapping.
    public init(path: String, entries: [Entry], metadata: [String: String] = [:], dataStart: Int? = nil) throws {
        self.path = path
        self.entries = entries
        var seen = Set<String>()
        for entry in entries {
            guard seen.insert(entry.name).inserted else { throw SafetensorsError(path, "duplicate tensor name \"\(entry.name)\"") }
            guard entry.name != "__metadata__" else { throw SafetensorsError(path, "a tensor cannot be named __metadata__") }
        }
        temporary = TemporaryPath(beside: path)
        do { output = try StagedFileOutput(creating: temporary.path, reportedAs: path) } catch {
            temporary.release()
            throw error
        }
        do {
            let header = Array(Self.header(entries: entries, metadata: metadata, dataStart: dataStart).utf8)
            try writeAll(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init))
            try writeAll(header)
        } catch {
            abandon()
            throw error
        }
    }

    /// The header bytes, padded with spaces so the data starts 8-byte aligned (at `dataStart`
    /// modulo the block size, when given).
    static func header(entries: [Entry], metadata: [String: String], dataStart: Int? = nil) -> String {
        var members: [(String, JSON)] = []
        var meta = metadata
        meta["format"] = meta["format"] ?? "pt"
        members.append(("__metadata__", .object(meta.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })))
        var offset = 0
        for entry in entries {
            let end = offset + entry.byteCount
            members.append((entry.name, .object([
                ("dtype", .string(entry.dtype.name)),
                ("shape", .array(entry.shape.map(JSON.int))),
                ("data_offsets", .array([.int(offset), .int(end)])),
            ])))
            offset = end
        }
        var text = JSON.object(members).text
        var padded = (text.utf8.count + 7) / 8 * 8
        if let dataStart {
            let block = StagedFileOutput.alignment
            padded += ((dataStart - 8 - padded) % block + block) % block
        }
        text += String(repeating: " ", count: padded - text.utf8.count)
        return text
    }

    deinit { if !finished { abandon() } }

    /// Writes the next planned tensor; its dtype and shape must match the plan.
    public func write(_ tensor: Tensor, name: String? = nil) throws {
        guard next < entries.count else { throw SafetensorsError(path, "more tensors written than planned") }
        let entry = entries[next]
        if let name, name != entry.name { throw SafetensorsError(path, "expected tensor \"\(entry.name)\" next, got \"\(name)\"") }
        guard tensor.dtype == entry.dtype, tensor.shape == entry.shape else {
            throw SafetensorsError(path, "tensor \"\(entry.name)\" planned as \(entry.shape.shapeText) \(entry.dtype), got \(tensor.shape.shapeText) \(tensor.dtype)")
        }
        try writeAll(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
        next += 1
    }

    /// Writes raw bytes of the next planned tensor (for copying a tensor through unchanged).
    public func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        guard next < entries.count, bytes.count == entries[next].byteCount else {
            throw SafetensorsError(path, "raw write does not match the planned tensor")
        }
        try writeAll(bytes)
        next += 1
    }

    /// Checks everything was written, flushes and renames into place.
    public func finish() throws {
        guard next == entries.count else {
            throw SafetensorsError(path, "only \(next) of \(entries.count) planned tensors were written")
        }
        do {
            try output.finish()
            try moveIntoPlace(temporary, over: path)
        } catch { abandon(); throw error }
        finished = true
    }

    /// Drops the partial file.
    public func abandon() {
        output.close()
        unlink(temporary.path)
        temporary.release()
        finished = true
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        do { try output.append(bytes) } catch { abandon(); throw error }
    }
}

/// Writes `tensors` (name, tensor) to one safetensors file.
public func saveSafetensors(_ tensors: [(String, Tensor)], to path: String, metadata: [String: String] = [:]) throws {
    let writer = try SafetensorsWriter(path: path, entries: tensors.map { .init(name: $0.0, dtype: $0.1.dtype, shape: $0.1.shape) }, metadata: metadata)
    for (name, tensor) in tensors { try writer.write(tensor, name: name) }
    try writer.finish()
}
