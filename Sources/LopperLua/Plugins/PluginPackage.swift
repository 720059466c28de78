import Foundation
import LopperIO

/// A plugin as it is shared: `plugin.lua` and what travels with it (`tests.lua`, a
/// README, example settings), read from a single `.lua` file (its tests beside it as
/// `NAME.test.lua`), a folder holding `plugin.lua`, or a packed file. `plugin pack`
/// writes the packed form: a canonical tar (Tar.swift) with `SHA256SUMS` listing every
/// file's SHA-256, so `sha256sum -c` checks an unpacked copy and a changed byte
/// anywhere is refused when it is read.
public struct PluginPackage {
    /// Relative path -> bytes; always holds `plugin.lua`.
    public var files: [String: Data]
    /// What it was read from, for messages.
    public var origin: String

    public static let sumsName = "SHA256SUMS", sourceName = "plugin.lua", testsName = "tests.lua"

    public var source: String { String(decoding: files[Self.sourceName] ?? Data(), as: UTF8.self) }
    /// The plugin's own tests, if it has any.
    public var tests: String? { files[Self.testsName].map { String(decoding: $0, as: UTF8.self) } }
    /// SHA-256 of `plugin.lua`: the code that runs, the hash outputs record.
    public var sha256: String { SHA256.hex(files[Self.sourceName] ?? Data()) }

    public init(files: [String: Data], origin: String) throws {
        guard let code = files[Self.sourceName] else { throw PluginError("\(origin): a plugin package needs plugin.lua") }
        guard String(data: code, encoding: .utf8) != nil else { throw PluginError("\(origin)/plugin.lua: not UTF-8 text") }
        self.files = files
        self.origin = origin
    }

    /// Reads a `.lua` file, a folder with `plugin.lua`, or a packed file.
    public static func read(_ path: String) throws -> PluginPackage {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw PluginError("\(path): no such plugin file or folder") }
        if isFolder.boolValue { return try readFolder(path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw PluginError("\(path): cannot read it") }
        if isPacked(data) { return try unpack(data, origin: path) }
        var files = [sourceName: data]
        let tests = String(path.dropLast(path.hasSuffix(".lua") ? 4 : 0)) + ".test.lua"
        if let test = FileManager.default.contents(atPath: tests) { files[testsName] = test }
        return try PluginPackage(files: files, origin: path)
    }

    /// Whether `data` is a tar archive (the packed form) rather than Lua text.
    public static func isPacked(_ data: Data) -> Bool {
        data.count >= 512 && data[data.startIndex + 257..<data.startIndex + 262] == Data("ustar".utf8)
    }

    public static func unpack(_ data: Data, origin: String) throws -> PluginPackage {
        var files: [String: Data]
        do { files = try Tar.read(data, file: origin) } catch let error as Tar.Failure { throw PluginError(error.description) }
        guard let sums = files.removeValue(forKey: sumsName) else { throw PluginError("\(origin): the package has no \(sumsName)") }
        guard sums == Self.sums(files) else {
            let listed = Set(String(decoding: sums, as: UTF8.self).split(separator: "\n").map(String.init))
            let wrong = files.keys.sorted().first { !listed.contains(Self.sumLine($0, files[$0]!)) } ?? sumsName
            throw PluginError("\(origin): \(wrong) does not match its SHA-256 in \(sumsName): the package was changed after packing")
        }
        return try PluginPackage(files: files, origin: origin)
    }

    /// The packed bytes: every file plus `SHA256SUMS`, in canonical tar form.
    public func packed() throws -> Data {
        var all = files
        all[Self.sumsName] = Self.sums(files)
        do { return try Tar.write(all) } catch let error as Tar.Failure { throw PluginError(error.description) }
    }

    /// Writes every file into `folder` (which must exist).
    public func write(into folder: String) throws {
        for (name, data) in files.sorted(by: { $0.key < $1.key }) {
            let path = folder + "/" + name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: path))
        }
    }

    private static func sumLine(_ name: String, _ data: Data) -> String { SHA256.hex(data) + "  " + name }

    private static func sums(_ files: [String: Data]) -> Data {
        Data(files.keys.sorted().map { sumLine($0, files[$0]!) + "\n" }.joined().utf8)
    }

    /// Regular files under `folder` (hidden ones and SHA256SUMS left out); links and
    /// other kinds are refused, so a package holds exactly what it shows.
    private static func readFolder(_ folder: String) throws -> PluginPackage {
        var files: [String: Data] = [:], total = 0
        guard let walker = FileManager.default.enumerator(atPath: folder) else { throw PluginError("\(folder): cannot list it") }
        while let relative = walker.nextObject() as? String {
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") || relative == sumsName { if walker.fileAttributes?[.type] as? FileAttributeType == .typeDirectory { walker.skipDescendants() }; continue }
            let type = walker.fileAttributes?[.type] as? FileAttributeType
            if type == .typeDirectory { continue }
            guard type == .typeRegular else { throw PluginError("\(folder)/\(relative): not a regular file; a plugin package holds regular files only") }
            do { try Tar.checkName(relative, file: folder) } catch let error as Tar.Failure { throw PluginError(error.description) }
            guard let data = FileManager.default.contents(atPath: folder + "/" + relative) else { throw PluginError("\(folder)/\(relative): cannot read it") }
            total += data.count
            guard files.count < Tar.maxFiles, total <= Tar.maxBytes else {
                throw PluginError("\(folder): more than \(Tar.maxFiles) files or \(Tar.maxBytes >> 20) MiB; a plugin package is small")
            }
            files[relative] = data
        }
        return try PluginPackage(files: files, origin: folder)
    }
}
