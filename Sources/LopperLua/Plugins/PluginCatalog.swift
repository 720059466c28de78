import Foundation

/// Where plugins are found, first match wins:
/// 1. the folders of `$LOPPER_PLUGIN_PATH` (colon-separated);
/// 2. the user folder, `$XDG_DATA_HOME/lopper/plugins` (default `~/.local/share/lopper/plugins`),
///    where `lopper plugin install` puts files;
/// 3. the bundled `Plugins/` folder, found from the executable's location: an installed
///    `PREFIX/bin/lopper` looks in `PREFIX/share/lopper/plugins`, a build in the source
///    tree (`.build/release/lopper`) finds the tree's `Plugins/`.
/// A method name matches `NAME.lua`; when no file has that exact name, `-` and `_` are
/// read alike (`darex-q` finds `darex_q.lua`, `my_method` finds `my-method.lua`).
public enum PluginCatalog {
    public struct Entry: Equatable {
        public var name: String
        public var path: String
        /// Which folder of the search path it came from (`LOPPER_PLUGIN_PATH`, `user`, `bundled`).
        public var origin: String
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

    /// Every plugin on the search path, by name (shadowed files left out).
    public static func all() -> [Entry] {
        var seen = Set<String>()
        var entries: [Entry] = []
        for (folder, origin) in searchPath {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for file in files.sorted() where file.hasSuffix(".lua") {
                let name = String(file.dropLast(4))
                if seen.insert(name).inserted { entries.append(Entry(name: name, path: folder + "/" + file, origin: origin)) }
            }
        }
        return entries
    }

    /// The file of method `name`, or `name` itself when it is a path to a `.lua` file.
    public static func resolve(_ name: String) throws -> String {
        if name.hasSuffix(".lua") || name.contains("/") {
            guard FileManager.default.fileExists(atPath: name) else { throw PluginError("\(name): no such plugin file") }
            return name
        }
        let entries = all()
        func folded(_ text: String) -> String { text.replacingOccurrences(of: "-", with: "_") }
        if let entry = entries.first(where: { $0.name == name }) ?? entries.first(where: { folded($0.name) == folded(name) }) {
            return entry.path
        }
        let known = entries.map(\.name)
        let folders = searchPath.map(\.folder).joined(separator: ", ")
        throw PluginError("no method named '\(name)'; available: \(known.isEmpty ? "none" : known.joined(separator: ", ")) (searched \(folders))")
    }

    /// Loads method `name` (a name on the search path or a file).
    public static func load(_ name: String) throws -> Plugin {
        let path = try resolve(name)
        let plugin = try Plugin(path: path)
        plugin.origin = all().first { $0.path == path }?.origin ?? "path"
        return plugin
    }
}
