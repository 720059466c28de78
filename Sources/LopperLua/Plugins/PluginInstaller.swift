import Foundation
import LopperIO

/// `lopper plugin install FILE|DIR|PACKAGE`: reads the plugin (PluginPackage), verifies
/// a packed file against its `.sha256` beside it or `--sha256`, runs the full check
/// (PluginCheck.full: sandbox load, manifest, API, trials, determinism, finiteness,
/// declared properties, its own tests), and only then puts its files in
/// `USER/NAME/VERSION/` with an install record. Versions live side by side; the same
/// version again is a no-op when its code is identical and needs `overwrite` when not.
/// Every path is built from the validated name and version only.
public enum PluginInstaller {
    public static let recordName = "install.json"

    /// What `install.json` holds.
    public struct Record: Codable, Sendable {
        public var name: String
        public var version: String
        /// SHA-256 of `plugin.lua`, the hash outputs record.
        public var sha256: String
        /// SHA-256 of the packed file it came from, if it came from one.
        public var packageSHA256: String?
        public var installedFrom: String
        public var checks: [String]
    }

    public struct Result {
        public var plugin: Plugin
        public var folder: String
        public var record: Record
        public var alreadyInstalled: Bool
    }

    public static func install(_ path: String, overwrite: Bool, expectedSHA256: String? = nil, into userFolder: String = PluginCatalog.userFolder) throws -> Result {
        let package = try PluginPackage.read(path)
        var packageSHA256: String?
        if let data = FileManager.default.contents(atPath: path), PluginPackage.isPacked(data) {
            let digest = SHA256.hex(data)
            packageSHA256 = digest
            var wanted = expectedSHA256.map { [("--sha256", $0.lowercased())] } ?? []
            if let sidecar = try? String(contentsOfFile: path + ".sha256", encoding: .utf8) {
                wanted.append((path + ".sha256", String(sidecar.split(whereSeparator: \.isWhitespace).first ?? "")))
            }
            for (source, hash) in wanted where hash != digest {
                throw PluginError("\(path): SHA-256 \(digest) is not the \(hash.prefix(64)) of \(source): the package was changed after packing")
            }
        } else if expectedSHA256 != nil {
            throw PluginError("\(path): --sha256 checks a packed file (from plugin pack), not a .lua file or folder")
        }
        let plugin = try Plugin(source: package.source, chunkName: "@plugin.lua", path: package.origin)
        let version = plugin.version
        guard !version.hasPrefix("."), !version.hasPrefix("-") else {
            throw PluginError("\(package.origin): version '\(version)' cannot name a folder; start it with a letter or digit")
        }
        let checks = try PluginCheck.full(plugin, tests: package.tests, testsFile: package.origin + "/" + PluginPackage.testsName)
        let record = Record(name: plugin.name, version: version, sha256: package.sha256, packageSHA256: packageSHA256,
                            installedFrom: URL(fileURLWithPath: path).standardizedFileURL.path, checks: checks)
        let manager = FileManager.default
        let parent = userFolder + "/" + plugin.name, target = parent + "/" + version
        try manager.createDirectory(atPath: parent, withIntermediateDirectories: true)
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: target, isDirectory: &isFolder) {
            let installed = (try? Data(contentsOf: URL(fileURLWithPath: target + "/" + recordName)))
                .flatMap { try? JSONDecoder().decode(Record.self, from: $0) }
            guard isFolder.boolValue, let installed else {
                throw PluginError("\(target) is not a plugin installed by lopper (no \(recordName)); remove it yourself")
            }
            if installed.sha256 == record.sha256, !overwrite {
                return Result(plugin: plugin, folder: target, record: installed, alreadyInstalled: true)
            }
            guard overwrite else {
                throw PluginError("\(plugin.name) \(version) is installed with other code (SHA-256 \(installed.sha256.prefix(12)), this is \(record.sha256.prefix(12))); give it a new version, or pass --overwrite to replace it")
            }
        }
        // Built under a registered temporary beside the target (removed on failure or a
        // signal) and swapped into place atomically, like every output.
        let staging = try ShardedWriter.temporaryFolder(beside: target)
        do {
            try package.write(into: staging.path)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(record).write(to: URL(fileURLWithPath: staging.path + "/" + recordName))
            try moveIntoPlace(staging, over: target)
        } catch {
            try? manager.removeItem(atPath: staging.path)
            staging.release()
            throw PluginError("cannot install \(target): \(plainReason(error))")
        }
        let installed = try Plugin(path: target + "/" + PluginPackage.sourceName)
        installed.origin = "user"
        return Result(plugin: installed, folder: target, record: record, alreadyInstalled: false)
    }
}
