import LopperIO
import ArgumentParser
import Foundation
import LopperLua
import LopperPrune

struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "List, describe, check and install method plugins.",
        discussion: "Plugins are found in $LOPPER_PLUGIN_PATH (colon-separated folders), then the user folder (\(PluginCatalog.userFolder)), then the bundled Plugins/.",
        subcommands: [List.self, Info.self, Check.self, Install.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The available methods, with version and summary.")
        func run() throws {
            try reportingErrors {
                var rows: [[String]] = []
                for entry in PluginCatalog.all() {
                    do {
                        let plugin = try Plugin(path: entry.path)
                        rows.append([plugin.name, plugin.version, entry.origin, plugin.summary])
                    } catch {
                        rows.append([entry.name, "-", entry.origin, "BROKEN: \(error)"])
                    }
                }
                print(renderTable(header: ["method", "version", "from", "summary"], rows: rows).joined(separator: "\n"))
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A method's summary, hooks and parameters with defaults and docs.")
        @Argument(help: "A method name or a plugin file.") var name: String
        func run() throws {
            try reportingErrors {
                let plugin = try PluginCatalog.load(name)
                print("\(plugin.name) \(plugin.version): \(plugin.summary)")
                print("file: \(plugin.path)")
                print("hooks: \(plugin.hooks.joined(separator: ", "))")
                print("parameters (--set key=value):")
                print(plugin.schema.listing)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a plugin file in the sandbox, validate its table and run it on small random tensors.")
        @Argument(help: "The plugin file.") var file: String
        func run() throws {
            try reportingErrors {
                let plugin = try Plugin(path: file)
                for line in try PluginCheck.run(plugin) { print(line) }
                print("ok: \(plugin.name) \(plugin.version) passes the checks")
            }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a plugin file, then copy it into the user plugin folder.")
        @Argument(help: "The plugin file.") var file: String
        @Flag(help: "Replace an installed plugin of the same name.") var overwrite = false
        func run() throws {
            try reportingErrors {
                let plugin = try Plugin(path: file)
                _ = try PluginCheck.run(plugin)
                let folder = PluginCatalog.userFolder
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let target = folder + "/" + plugin.name + ".lua"
                // The path is built from the validated name only (letters, digits, '_', '-').
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: target, isDirectory: &isFolder) {
                    guard !isFolder.boolValue else { throw ValidationError("\(target) is a folder, not an installed plugin; remove it yourself") }
                    guard overwrite else { throw ValidationError("\(target) exists; pass --overwrite to replace it") }
                }
                let staging = folder + "/.\(plugin.name).lua.installing-\(getpid())"
                try? FileManager.default.removeItem(atPath: staging)
                try FileManager.default.copyItem(atPath: file, toPath: staging)
                guard rename(staging, target) == 0 else {
                    try? FileManager.default.removeItem(atPath: staging)
                    throw ValidationError("cannot install \(target): \(String(cString: strerror(errno)))")
                }
                print("installed \(plugin.name) \(plugin.version) as \(target)")
            }
        }
    }
}
