import Foundation

/// Where plugins are found, in this order of folders:
/// 1. the folders of `$LOPPER_PLUGIN_PATH` (colon-separated);
/// 2. the user folder, `$XDG_DATA_HOME/lopper/plugins` (default `~/.local/share/lopper/plugins`),
///    where `lopper plugin install` puts each version in `NAME/VERSION/`;
/// 3. the bundled `Plugins/` folder, found from the executable's location: an installed
///    `PREFIX/bin/lopper` looks in `PREFIX/share/lopper/plugins`, a build in the source
///    tree (`.build/release/lopper`) finds the tree's `Plugins/`.
/// In each folder a plugin is `NAME.lua`, `NAME/plugin.lua` (a package folder) or
/// `NAME/VERSION/plugin.lua` (installed). `NAME@VERSION` picks that version; `NAME` the
/// newest one anywhere, the earlier folder winning a tie. When no plugin has that exact
/// name, `-` and `_` are read alike (`darex-q` finds `darex_q`).
public enum PluginCatalog {
    public struct Entry: Equatable {
        public var name: String
        /// The version, from the install folder's name or read from the plugin when listed.
        public var version: String?
        /// The plugin's `plugin.lua` or `NAME.lua`.
        public var path: String
        /// Which folder of the search path it came from (`LOPPER_PLUGIN_PATH`, `user`, `bundled`).
        public var origin: String
        /// The install record (`install.json`) beside an installed version.
        public var record: String? {
            let file = (path as NSString).deletingLastPathComponent + "/" + PluginInstaller.recordName
            return FileManager.default.fileExists(atPath: file) ? file : nil
        }
    }

    public static var userFolder: String {
        let environment = ProcessInfo.processInfo.environment
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        return data + "/lopper/plugins"
    }

    public static var bundledFolder: String? {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        for _ in 0..<6 {
            for candidate in ["share/lopper/plugins", "Plugins"] {
                let path = folder.appendingPathComponent(candidate).path
                if FileManager.default.fileExists(atPath: path + "/dare.lua") { return path }
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// The search path with each folder's origin.
    public static var searchPath: [(folder: String, origin: String)] {
        var folders: [(String, String)] = []
        if let path = ProcessInfo.processInfo.environment["LOPPER_PLUGIN_PATH"] {
            folders += path.split(separator: ":").map { (String($0), "LOPPER_PLUGIN_PATH") }
        }
        folders.append((userFolder, "user"))
        if let bundled = bundledFolder { folders.append((bundled, "bundled")) }
        return folders
    }

    /// Every plugin on the search path, folder by folder, every version of each.
    public static func all() -> [Entry] {
        var entries: [Entry] = []
        let manager = FileManager.default
        for (folder, origin) in searchPath {
            for item in ((try? manager.contentsOfDirectory(atPath: folder)) ?? []).sorted() where !item.hasPrefix(".") {
                let path = folder + "/" + item
                // A name holds no dot: `NAME.test.lua` beside `NAME.lua` is its tests, not a plugin.
                if item.hasSuffix(".lua") {
                    let name = String(item.dropLast(4))
                    if !name.contains(".") { entries.append(Entry(name: name, path: path, origin: origin)) }
                    continue
                }
                if manager.fileExists(atPath: path + "/" + PluginPackage.sourceName) {
                    entries.append(Entry(name: item, path: path + "/" + PluginPackage.sourceName, origin: origin))
                    continue
                }
                let versions = ((try? manager.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }
                for version in versions.sorted(by: { PluginVersion.isNewer($0, than: $1) }) {
                    let file = path + "/" + version + "/" + PluginPackage.sourceName
                    if manager.fileExists(atPath: file) { entries.append(Entry(name: item, version: version, path: file, origin: origin)) }
                }
            }
        }
        return entries
    }

    /// The entry of method `spec` (`NAME`, `NAME@VERSION`), or nil when it names a file.
    public static func find(_ spec: String) throws -> Entry {
        let (name, version) = split(spec)
        let entries = all()
        func folded(_ text: String) -> String { text.replacingOccurrences(of: "-", with: "_") }
        var matching = entries.filter { $0.name == name }
        if matching.isEmpty { matching = entries.filter { folded($0.name) == folded(name) } }
        guard !matching.isEmpty else {
            let known = Array(Set(entries.map(\.name))).sorted()
            let folders = searchPath.map(\.folder).joined(separator: ", ")
            throw PluginError("no method named '\(name)'; available: \(known.isEmpty ? "none" : known.joined(separator: ", ")) (searched \(folders))")
        }
        let versioned = matching.map { entry -> Entry in
            var entry = entry
            if entry.version == nil { entry.version = (try? Plugin(path: entry.path))?.version }
            return entry
        }
        if let version {
            guard let entry = versioned.first(where: { $0.version == version }) else {
                let found = versioned.map { "\($0.version ?? "broken") (\($0.origin))" }.joined(separator: ", ")
                throw PluginError("no version \(version) of method '\(name)'; found \(found)")
            }
            return entry
        }
        // Newest first; a stable sort keeps search-path order among equal versions.
        return versioned.enumerated().sorted { a, b in
            let (x, y) = (a.element.version ?? "", b.element.version ?? "")
            if x != y { return PluginVersion.isNewer(x, than: y) }
            return a.offset < b.offset
        }.first!.element
    }

    /// `NAME@VERSION` split in two (no `@`: any version).
    public static func split(_ spec: String) -> (name: String, version: String?) {
        guard let at = spec.lastIndex(of: "@") else { return (spec, nil) }
        return (String(spec[..<at]), String(spec[spec.index(after: at)...]))
    }

    /// Whether `spec` names a plugin file or folder rather than a method on the search path.
    public static func isPath(_ spec: String) -> Bool { spec.hasSuffix(".lua") || spec.contains("/") }

    /// The `plugin.lua` file of method `spec`, or `spec` itself when it is a path.
    public static func resolve(_ spec: String) throws -> String {
        guard isPath(spec) else { return try find(spec).path }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spec, isDirectory: &isFolder) else { throw PluginError("\(spec): no such plugin file") }
        return isFolder.boolValue ? spec + "/" + PluginPackage.sourceName : spec
    }

    /// Loads method `spec` (a name, `name@version`, or a plugin file or folder).
    public static func load(_ spec: String) throws -> Plugin {
        if isPath(spec) { return try Plugin(path: resolve(spec)) }
        let entry = try find(spec)
        let plugin = try Plugin(path: entry.path)
        plugin.origin = entry.origin
        return plugin
    }
}

/// Versions as plugins write them (`1.2.0`, `2.0.0-beta.1`): dot-separated parts,
/// numeric ones compared as numbers, a pre-release (`-...`) older than its release.
public enum PluginVersion {
    public static func isNewer(_ a: String, than b: String) -> Bool {
        func parts(_ text: Substring) -> [Substring] { text.split(separator: ".", omittingEmptySubsequences: false) }
        let (mainA, preA) = release(a), (mainB, preB) = release(b)
        if let order = compare(parts(mainA), parts(mainB)) { return order }
        switch (preA, preB) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case let (x?, y?): return compare(parts(x), parts(y)) ?? false
        }
    }

    private static func release(_ version: String) -> (Substring, Substring?) {
        let plain = version.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let pieces = plain.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        return (pieces.first ?? "", pieces.count > 1 ? pieces[1] : nil)
    }

    /// true: a is newer; false: older; nil: equal.
    private static func compare(_ a: [Substring], _ b: [Substring]) -> Bool? {
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : "0", y = index < b.count ? b[index] : "0"
            if let m = Int(x), let n = Int(y) { if m != n { return m > n } } else if x != y { return x > y }
        }
        return nil
    }
}
