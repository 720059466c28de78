import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one rule for where a command may write, checked for every output (main and side:
/// `--out`, `--report`, `--svg`, ...) before any work starts:
///
/// * an output is never an input, inside an input folder, or a folder holding an input,
///   nor the current folder or one above it (paths compared after resolving symlinks
///   and `..`; symlinked files of an input folder count as inputs too);
/// * two outputs are never the same path;
/// * an existing output is replaced only with `overwrite` (an empty folder is fine for
///   a folder output); a folder is never replaced by a file;
/// * the folder an output goes into must be writable (a file's folder must exist).
///
/// Labels are the caller's words for each path (`--out`, `save`), used in the messages.
public struct OutputGuard {
    public enum Kind: Sendable { case folder, file }

    private var inputs: [(label: String, path: String)] = []
    private var outputs: [(label: String, path: String, kind: Kind)] = []
    public var overwrite: Bool
    /// How the caller asks for a replacement, for the message (e.g. "pass --overwrite").
    public var overwriteHint: String

    public init(overwrite: Bool, overwriteHint: String = "pass --overwrite to replace it") {
        self.overwrite = overwrite
        self.overwriteHint = overwriteHint
    }

    public mutating func input(_ label: String, _ path: String?) {
        if let path { inputs.append((label, path)) }
    }

    public mutating func output(_ label: String, _ path: String?, _ kind: Kind) {
        if let path { outputs.append((label, path, kind)) }
    }

    public func check() throws {
        let current = Self.resolve(FileManager.default.currentDirectoryPath)
        var resolvedInputs: [(label: String, path: String)] = []
        for (label, path) in inputs where !path.isEmpty {
            let resolved = Self.resolve(path)
            resolvedInputs.append((label, resolved))
            for linked in Self.linkedFiles(in: resolved) { resolvedInputs.append((label, linked)) }
        }
        var seen: [(label: String, path: String)] = []
        for (label, path, kind) in outputs {
            guard !path.isEmpty else { throw OutputError("\(label): the path is empty") }
            let resolved = Self.resolve(path)
            func fail(_ why: String) -> OutputError { OutputError("\(label) \(path): \(why)") }
            for input in resolvedInputs {
                if resolved == input.path { throw fail("is the input \(input.label); outputs never replace inputs") }
                if Self.isInside(resolved, input.path) { throw fail("is inside the input \(input.label); choose a path outside it") }
                if Self.isInside(input.path, resolved) { throw fail("holds the input \(input.label); choose a path that does not contain it") }
            }
            if Self.isInside(current, resolved) || current == resolved {
                throw fail("is the current folder or holds it; name a new folder")
            }
            if let other = seen.first(where: { $0.path == resolved }) { throw fail("is also the path of \(other.label)") }
            seen.append((label, resolved))
            try Self.checkTarget(resolved, kind: kind, overwrite: overwrite, hint: overwriteHint, fail)
        }
    }

    private static func checkTarget(_ path: String, kind: Kind, overwrite: Bool, hint: String,
                                    _ fail: (String) -> OutputError) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
            if kind == .file, isFolder { throw fail("is a folder; name a file") }
            if kind == .file, (info.st_mode & S_IFMT) != S_IFREG { throw fail("exists and is \(fileKindText(info.st_mode)), not a regular file") }
            let empty = isFolder && ((try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty ?? false)
            if !(kind == .folder && empty) && !overwrite { throw fail("exists; \(hint)") }
        }
        // The nearest folder that exists must take new files.
        var folder = (path as NSString).deletingLastPathComponent
        if kind == .file {
            guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw fail("the folder \(folder) does not exist")
            }
        }
        while stat(folder, &info) != 0, folder != "/" { folder = (folder as NSString).deletingLastPathComponent }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw fail("\(folder) is not a folder") }
        guard access(folder, W_OK) == 0 else { throw fail("cannot write in \(folder): \(String(cString: strerror(errno)))") }
    }

    /// `a` lies strictly below folder `b`.
    static func isInside(_ a: String, _ b: String) -> Bool {
        b == "/" ? a != "/" : a.hasPrefix(b + "/")
    }

    /// `path` made absolute with symlinks and `.`/`..` resolved as the kernel would, also
    /// where its tail does not exist yet.
    public static func resolve(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var current = "/"
        for component in absolute.split(separator: "/") where component != "." {
            if component == ".." { current = (current as NSString).deletingLastPathComponent; continue }
            let candidate = current == "/" ? "/" + component : current + "/" + component
            var info = stat()
            if lstat(candidate, &info) == 0, let real = realpath(candidate, nil) {
                current = String(cString: real)
                free(real)
            } else {
                current = candidate
            }
        }
        return current
    }

    /// Where the symlinks directly inside `folder` lead (a hub cache's blobs).
    static func linkedFiles(in folder: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return names.compactMap { name in
            var info = stat()
            guard lstat(folder + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { return nil }
            return resolve(folder + "/" + name)
        }
    }
}

public struct OutputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
