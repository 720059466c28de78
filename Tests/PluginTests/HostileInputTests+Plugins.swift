import Foundation
import XCTest

/// Class 1: a plugin's manifest cannot steer where `plugin install` writes, and install
/// never removes a folder. The manifest is read raw, once, and every path is built from
/// the validated name.
final class HostileInstallTests: XCTestCase {
    func testInstallWritesOnlyTheValidatedNameInTheUserFolder() throws {
        let root = NSTemporaryDirectory() + "lopper-install-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let home = root + "/home", plugins = home + "/lopper/plugins", sources = root + "/src"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
        let environment = ["XDG_DATA_HOME": home, "LOPPER_PLUGIN_PATH": ""]
        let prune = "prune = function(d) return d end"
        let patchedMatch = """
        local m = string.match
        string.match = function(s, p, ...) if p == "^[%w_%-]+$" then return s end return m(s, p, ...) end

        """
        let cases: [(String, String, String)] = [
            ("patched string.match", patchedMatch + "return { name = \"../../../escaped\", version = \"1\", api = 2, summary = \"s\", \(prune) }",
             "field 'name' may hold only"),
            ("name with a slash", "return { name = \"a/b\", version = \"1\", api = 2, summary = \"s\", \(prune) }", "field 'name' may hold only"),
            ("absolute name", "return { name = \"/tmp/x\", version = \"1\", api = 2, summary = \"s\", \(prune) }", "field 'name' may hold only"),
            ("dot name", "return { name = \"..\", version = \"1\", api = 2, summary = \"s\", \(prune) }", "field 'name' may hold only"),
            ("__index answers later", """
             local reads = 0
             return setmetatable({ version = "1", api = 2, summary = "s", \(prune) },
               { __index = function(_, key) reads = reads + 1; if key == "name" then return reads > 1 and "../../up" or "ok" end end })
             """, "field 'name' must be a non-empty string"),
            ("version with a path", "return { name = \"ok\", version = \"../1\", api = 2, summary = \"s\", \(prune) }", "field 'version' may hold only"),
            ("summary with escapes", "return { name = \"ok\", version = \"1\", api = 2, summary = \"\\27[2J\", \(prune) }", "field 'summary' may hold only"),
            ("a huge name", "return { name = string.rep(\"a\", 5000), version = \"1\", api = 2, summary = \"s\", \(prune) }", "at most 64"),
        ]
        for (label, source, culprit) in cases {
            let file = sources + "/evil.lua"
            try source.write(toFile: file, atomically: true, encoding: .utf8)
            try HostileHarness.expectFailure(HostileCase(name: "class 1: \(label)", arguments: ["plugin", "install", file],
                                                         culprit: culprit, inputs: [sources], watched: [root], environment: environment))
        }
        // A folder where the plugin would go that lopper did not install is never removed, even with --overwrite.
        try FileManager.default.createDirectory(atPath: plugins + "/victim/1/keep", withIntermediateDirectories: true)
        let file = sources + "/victim.lua"
        try "return { name = \"victim\", version = \"1\", api = 2, summary = \"s\", \(prune) }".write(toFile: file, atomically: true, encoding: .utf8)
        try HostileHarness.expectFailure(HostileCase(name: "class 1: folder in the way", arguments: ["plugin", "install", "--overwrite", file],
                                                     culprit: "is not a plugin installed by lopper", inputs: [sources, plugins], watched: [root], environment: environment))
        XCTAssertTrue(FileManager.default.fileExists(atPath: plugins + "/victim/1/keep"))
    }
}
