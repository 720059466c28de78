import LopperIO
import ArgumentParser
import Foundation
import LopperLua
import LopperPrune

struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Start, test, check, pack, install, list and describe method plugins.",
        discussion: "Plugins are found in $LOPPER_PLUGIN_PATH (colon-separated folders), then the user folder (\(PluginCatalog.userFolder)), then the bundled Plugins/. A plugin is a .lua file, a folder with plugin.lua, or a packed file from `plugin pack`; `--method NAME@VERSION` picks an installed version, NAME the newest.",
        subcommands: [List.self, Info.self, New.self, Test.self, Check.self, Pack.self, Install.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every plugin on the search path: name, version, source, SHA-256 and whether its checks passed.")
        @Flag(help: "JSON on stdout, with full SHA-256s.") var json = false
        func run() throws {
            try reportingErrors {
                var rows: [[String]] = [], objects: [[String: String]] = []
                for entry in PluginCatalog.all() {
                    let sha = (try? SHA256.hex(file: entry.path)) ?? "-"
                    let checks = entry.record != nil ? "passed" : entry.origin == "bundled" ? "bundled" : "not checked"
                    var row = ["method": entry.name, "version": entry.version ?? "-", "source": entry.origin, "sha256": sha,
                               "checks": checks, "path": entry.path]
                    do {
                        let plugin = try Plugin(path: entry.path)
                        row["version"] = plugin.version
                        row["summary"] = plugin.summary
                    } catch {
                        row["summary"] = "BROKEN: \(error)"
                        row["checks"] = "fails to load"
                    }
                    objects.append(row)
                    rows.append([row["method"]!, row["version"]!, row["source"]!, String(sha.prefix(12)), row["checks"]!, row["summary"]!])
                }
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(objects), as: UTF8.self))
                } else {
                    print(renderTable(header: ["method", "version", "source", "sha256", "checks", "summary"], rows: rows).joined(separator: "\n"))
                }
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A method's summary, hooks and parameters with defaults and docs.")
        @Argument(help: "A method name, name@version, or a plugin file or folder.") var name: String
        func run() throws {
            try reportingErrors {
                let plugin = try PluginCatalog.load(name)
                print("\(plugin.name) \(plugin.version): \(plugin.summary)")
                print("file: \(plugin.path) (\(plugin.origin)), SHA-256 \(plugin.provenance?.sha256 ?? "-")")
                print("hooks: \(plugin.hooks.joined(separator: ", "))")
                if !plugin.manifest.properties.isEmpty { print("properties: \(plugin.manifest.properties.sorted().joined(separator: ", "))") }
                print("parameters (--set key=value):")
                print(plugin.schema.listing)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a plugin as install does: sandbox load, manifest, API, shapes, finiteness, determinism, declared properties, its own tests.")
        @Argument(help: "A plugin .lua file, a folder with plugin.lua, or a packed file.") var file: String
        func run() throws {
            try reportingErrors {
                let package = try PluginPackage.read(file)
                let plugin = try Plugin(source: package.source, chunkName: "@plugin.lua", path: package.origin)
                for line in try PluginCheck.full(plugin, tests: package.tests, testsFile: package.origin + "/" + PluginPackage.testsName) { print(line) }
                print("ok: \(plugin.name) \(plugin.version) passes the checks (SHA-256 \(package.sha256))")
            }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a plugin (as `plugin check` does), then install it in the user folder under its name and version.")
        @Argument(help: "A plugin .lua file, a folder with plugin.lua, or a packed file (verified against FILE.sha256 when present).") var file: String
        @Option(help: "The SHA-256 the packed file must have.") var sha256: String?
        @Flag(help: "Replace an installed version of the same number whose code differs.") var overwrite = false
        func run() throws {
            try reportingErrors {
                let result = try PluginInstaller.install(file, overwrite: overwrite, expectedSHA256: sha256)
                let plugin = result.plugin
                if result.alreadyInstalled {
                    print("\(plugin.name) \(plugin.version) is already installed with the same code (SHA-256 \(result.record.sha256.prefix(12))) in \(result.folder)")
                } else {
                    for line in result.record.checks { print(line) }
                    print("installed \(plugin.name) \(plugin.version) (SHA-256 \(result.record.sha256.prefix(12))) in \(result.folder); use --method \(plugin.name)@\(plugin.version)")
                }
            }
        }
    }
}
