import ArgumentParser
import Foundation
import LopperIO
import LopperLua

/// The verbs for making a plugin to share: new, test, pack.
extension PluginCommand {
    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a plugin: a folder NAME/ with plugin.lua, tests.lua, README.md and example settings.")
        @Argument(help: "The plugin's name (letters, digits, '_', '-').") var name: String
        @Option(help: "Where to create the folder.") var dir: String = "."
        func run() throws {
            try reportingErrors {
                guard !name.isEmpty, name.count <= 64, name.allSatisfy({ ($0.isLetter || $0.isNumber) && $0.isASCII || $0 == "_" || $0 == "-" }) else {
                    throw ValidationError("'\(name)' is not a plugin name: letters, digits, '_' and '-', at most 64")
                }
                let folder = dir + "/" + name
                guard !FileManager.default.fileExists(atPath: folder) else { throw ValidationError("\(folder) exists; choose another name or --dir") }
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for (file, text) in PluginScaffold.files(name: name).sorted(by: { $0.key < $1.key }) {
                    try text.write(toFile: folder + "/" + file, atomically: true, encoding: .utf8)
                    print("created \(folder)/\(file)")
                }
                print("next: edit \(folder)/plugin.lua, then `lopper plugin test \(folder)` and `lopper plugin check \(folder)`")
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a plugin's own tests (tests.lua in its folder, or NAME.test.lua beside NAME.lua) in the sandbox.")
        @Argument(help: "A plugin file, folder or packed file, or an installed method (name or name@version).") var plugin: String
        func run() throws {
            try reportingErrors {
                let path = PluginCatalog.isPath(plugin) || FileManager.default.fileExists(atPath: plugin) ? plugin : try PluginCatalog.find(plugin).path
                let folderPath = path.hasSuffix("/" + PluginPackage.sourceName) ? String(path.dropLast(PluginPackage.sourceName.count + 1)) : path
                let package = try PluginPackage.read(folderPath)
                let loaded = try Plugin(source: package.source, chunkName: "@plugin.lua", path: package.origin)
                guard let tests = package.tests else {
                    throw ValidationError("\(package.origin): no tests (tests.lua in a plugin folder, or NAME.test.lua beside NAME.lua)")
                }
                let outcomes = try PluginSelfTest.run(tests, file: package.origin + "/" + PluginPackage.testsName, plugin: loaded)
                for outcome in outcomes { print((outcome.failure == nil ? "ok    " : "FAIL  ") + outcome.name + (outcome.failure.map { ": \($0)" } ?? "")) }
                let failed = outcomes.filter { $0.failure != nil }.count
                guard failed == 0 else { throw ValidationError("\(failed) of \(outcomes.count) tests of \(loaded.name) failed") }
                print("\(outcomes.count) tests of \(loaded.name) \(loaded.version) passed")
            }
        }
    }

    struct Pack: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a plugin, then write it as one shareable file NAME-VERSION.lopper.tar and its SHA-256 (FILE.sha256).")
        @Argument(help: "A plugin folder (plugin.lua, tests.lua, README, ...) or a .lua file.") var plugin: String
        @Option(help: ArgumentHelp("The package file (default: NAME-VERSION.lopper.tar here).", valueName: "file")) var out: String?
        @Flag(help: "Replace an existing package file.") var overwrite = false
        func run() throws {
            try reportingErrors {
                let package = try PluginPackage.read(plugin)
                let loaded = try Plugin(source: package.source, chunkName: "@plugin.lua", path: package.origin)
                _ = try PluginCheck.full(loaded, tests: package.tests, testsFile: package.origin + "/" + PluginPackage.testsName)
                let target = out ?? "\(loaded.name)-\(loaded.version).lopper.tar"
                var paths = OutputGuard(overwrite: overwrite)
                paths.input("plugin", plugin)
                paths.output("--out", target, .file)
                paths.output("--out", target + ".sha256", .file)
                try paths.check()
                let data = try package.packed()
                let digest = SHA256.hex(data)
                try writeFileAtomically(data, to: target)
                try writeFileAtomically(Data("\(digest)  \((target as NSString).lastPathComponent)\n".utf8), to: target + ".sha256")
                print("packed \(loaded.name) \(loaded.version) (\(package.files.count) files) into \(target)")
                print("SHA-256 \(digest)")
            }
        }
    }
}
