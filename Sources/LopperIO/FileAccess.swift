import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Reading and writing whole files with one-line errors in plain words. Reads never
// block on a FIFO or device, and follow symlinks (a Hugging Face cache snapshot is a
// folder of links into ../../blobs).

/// What a non-regular file is, for messages: "a folder", "a FIFO", ...
func fileKindText(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a folder"
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFLNK: return "a symbolic link"
    default: return "a regular file"
    }
}

/// Opens `path` for reading if it is (or links to) a regular file; never waits on a FIFO.
func openRegularFile(_ path: String) throws -> Int32 {
    let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard descriptor >= 0 else { throw SafetensorsError(path, "cannot open: \(String(cString: strerror(errno)))") }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
        let why = String(cString: strerror(errno))
        close(descriptor)
        throw SafetensorsError(path, "cannot open: \(why)")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        close(descriptor)
        throw SafetensorsError(path, "is \(fileKindText(info.st_mode)), not a regular file")
    }
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
    return descriptor
}

/// True when `path` is, or links to, a regular file (no open, so no FIFO can block).
public func isRegularFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// The bytes of the regular file at `path`.
public func readFile(_ path: String) throws -> Data {
    let descriptor = try openRegularFile(path)
    defer { close(descriptor) }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw SafetensorsError(path, "cannot read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { return data }
        data.append(contentsOf: buffer[..<count])
    }
}

/// Writes `data` to `path` directly (for files inside a temporary output folder).
public func writeFile(_ data: Data, to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw SafetensorsError(path, "cannot create: \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    try data.withUnsafeBytes { try writeAll(descriptor, $0, path) }
}

/// Writes `data` to `path` under a registered temporary name, renamed into place when
/// complete: readers see the old file or the new one, and signals leave no debris.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    let temporary = TemporaryPath(beside: path)
    do {
        try writeFile(data, to: temporary.path)
        try moveIntoPlace(temporary, over: path)
    } catch {
        unlink(temporary.path)
        temporary.release()
        throw error
    }
}

/// Copies the content of `source` (following symlinks) to a new file `target`.
public func copyFileContents(from source: String, to target: String) throws {
    let input = try openRegularFile(source)
    defer { close(input) }
    let output = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard output >= 0 else { throw SafetensorsError(target, "cannot create: \(String(cString: strerror(errno)))") }
    defer { close(output) }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw SafetensorsError(source, "cannot read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { return }
        try buffer.withUnsafeBytes { try writeAll(output, UnsafeRawBufferPointer(rebasing: $0[..<count]), target) }
    }
}

private func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            throw SafetensorsError(path, "cannot write: \(String(cString: strerror(errno)))")
        }
        offset += written
    }
}

/// The reason inside a Foundation error in plain words (no `NSCocoaErrorDomain Code=`).
public func plainReason(_ error: Error) -> String {
    let error = error as NSError
    guard error.domain == NSCocoaErrorDomain || error.domain == NSPOSIXErrorDomain else { return "\(error)" }
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
    switch CocoaError.Code(rawValue: error.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or folder"
    case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
    case .fileWriteFileExists: return "already exists"
    case .fileWriteOutOfSpace: return "no space left on the device"
    case .fileWriteVolumeReadOnly: return "the file system is read-only"
    case .fileReadCorruptFile: return "not in the expected format"
    case .fileWriteInvalidFileName: return "not a valid file name"
    default: return "cannot read or write it (error \(error.code))"
    }
}

/// One line for any error: Foundation file errors become `PATH: reason`.
public func plainMessage(_ error: Error) -> String {
    let bridged = error as NSError
    guard bridged.domain == NSCocoaErrorDomain || bridged.domain == NSPOSIXErrorDomain else {
        return "\(error)".replacingOccurrences(of: "\n", with: " ")
    }
    let path = (bridged.userInfo[NSFilePathErrorKey] as? String) ?? (bridged.userInfo[NSURLErrorKey] as? URL)?.path
    return (path.map { $0 + ": " } ?? "") + plainReason(error)
}
