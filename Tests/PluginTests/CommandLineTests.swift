import Foundation
import XCTest

/// `lopper prune` and `lopper plugin` as a user runs them: the built binary
/// (Scripts/test builds it before the tests), exit codes, one-line errors and no
/// partial output.
final class CommandLineTests: XCTestCase {
    func lopper(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        try LopperBinary.run(arguments, environment: environment)
    }

    func testPruneWritesAModelAndAReport() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let out = fixture.folder + "/pruned", report = fixture.folder + "/report.json"
        let run = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "darex-q",
                              "--set", "rate=0.9", "--seed", "3", "--out", out, "--report", report])
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertTrue(run.output.contains("method darex_q, seed 3"), run.output)
        XCTAssertTrue(run.output.contains("kept as fine-tuned:"), run.output)
        XCTAssertEqual(run.error, "lopper: note: q chosen in closed form without data; --data FILE searches q on text (better results)\n",
                       "no progress bar without a terminal; the closed form says that data does better")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
        XCTAssertEqual(json?["method"] as? String, "darex_q")
        XCTAssertEqual((json?["tensors"] as? [Any])?.count, 11)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors.index.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/config.json"))

        let again = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "dare", "--out", out])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.error.contains("--overwrite"), again.error)

        let dry = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "dare",
                              "--set", "rate=[0.5,0.9]", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.error)
        XCTAssertTrue(dry.output.contains("rate=0.9"), dry.output)
        XCTAssertTrue(dry.output.contains("6 of 11 tensors would be pruned"), dry.output)
    }

    func testBadInputGivesOneLineAndNoOutput() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let out = fixture.folder + "/never"
        let failing = fixture.folder + "/failing.lua"
        try """
        return { name = "failing", version = "1", api = 2, summary = "fails on layer 1",
          prune = function(delta, ctx)
            if ctx.layer == 1 then error("layer one is cursed") end
            return delta
          end }
        """.write(toFile: failing, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--method", "dare", "--set", "rate=7"], "outside 0..1"),
            (["--method", "dare", "--set", "speed=1"], "unknown parameter 'speed'"),
            (["--method", "nonesuch"], "no method named 'nonesuch'; available: breadcrumbs, dare, dare_l1, darex_l2, darex_q, della, magnitude, structural, ties, wanda"),
            (["--method", failing], "failing.lua:3: layer one is cursed"),
            (["--method", "dare", "--dtype", "int8"], "'int8' is invalid for '--dtype <dtype>'"),
            (["--method", "dare", "--shard-size", "lots"], "'lots' is invalid for '--shard-size <size>'"),
            (["--method", "dare", "--output", "dense"], "'dense' is invalid for '--output <output>'"),
            (["--method", "dare", "--sparse-kept", "delta"], "--sparse-kept needs --output sparse"),
            (["--method", "dare", "--threads", "0"], "--threads must be at least 1"),
        ]
        for (arguments, expected) in cases {
            let run = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--out", out] + arguments)
            XCTAssertNotEqual(run.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(run.error.contains(expected), "expected '\(expected)' in: \(run.error)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "output left behind by \(arguments)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.folder).filter { $0.hasPrefix(".") }
            XCTAssertEqual(leftovers, [], "temporary files left behind by \(arguments)")
        }
        let missing = try lopper(["prune", "--base", fixture.folder + "/nowhere", "--finetuned", fixture.finetuned,
                                  "--method", "dare", "--out", out])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.error.contains("nowhere: no such file or folder"), missing.error)
    }

    func testPluginCommandsListDescribeCheckAndInstall() throws {
        let home = NSTemporaryDirectory() + "lopper-home-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: home) }
        let environment = ["XDG_DATA_HOME": home, "LOPPER_PLUGIN_PATH": ""]
        let list = try lopper(["plugin", "list"], environment: environment)
        XCTAssertEqual(list.status, 0, list.error)
        for name in ["dare", "darex_q", "structural", "magnitude"] { XCTAssertTrue(list.output.contains(name), list.output) }
        let info = try lopper(["plugin", "info", "darex-q"], environment: environment)
        XCTAssertTrue(info.output.contains("mode (string, default closed_form, one of fixed|closed_form|analytical|search)"), info.output)

        let file = home + "-mine.lua"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
        return { name = "halve", version = "0.2.0", api = 2, summary = "halves every delta",
          prune = function(delta, ctx) return delta * 0.5 end }
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try lopper(["plugin", "check", file], environment: environment)
        XCTAssertEqual(check.status, 0, check.error)
        XCTAssertTrue(check.output.contains("ok: halve 0.2.0"), check.output)
        let install = try lopper(["plugin", "install", file], environment: environment)
        XCTAssertEqual(install.status, 0, install.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/lopper/plugins/halve/0.2.0/plugin.lua"))
        let listed = try lopper(["plugin", "list"], environment: environment)
        XCTAssertTrue(listed.output.contains("halve"), listed.output)
        XCTAssertTrue(listed.output.contains("user"), listed.output)

        try "return { name = 'bad', version = '1', api = 2, summary = 's', prune = function(d) return lopper.zeros({1}) end }"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try lopper(["plugin", "check", file], environment: environment)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.error.contains("returned shape [1]"), bad.error)
    }

    /// Plugin names with '-' are selectable as written, and '-' and '_' are read alike
    /// when no file has the exact name.
    func testHyphenatedPluginNamesAreSelectable() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let folder = fixture.folder + "/plugins"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "return { name = 'my-method', version = '1', api = 2, summary = 's', prune = function(d) return d * 0.5 end }"
            .write(toFile: folder + "/my-method.lua", atomically: true, encoding: .utf8)
        let environment = ["LOPPER_PLUGIN_PATH": folder]
        for spelling in ["my-method", "my_method"] {
            let info = try lopper(["plugin", "info", spelling], environment: environment)
            XCTAssertEqual(info.status, 0, info.error)
            XCTAssertTrue(info.output.hasPrefix("my-method 1:"), info.output)
        }
        let run = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "my-method",
                              "--out", fixture.folder + "/half", "--quiet"], environment: environment)
        XCTAssertEqual(run.status, 0, run.error)
    }

    /// Every verb shows the option groups it shares with the others, under one title each.
    func testEveryVerbShowsTheSharedOptionGroups() throws {
        let expected: [(String, [String])] = [
            ("prune", ["MODEL PAIR:", "SELECTION:", "OUTPUT:", "CHECKPOINT OUTPUT:", "THREADS:"]),
            ("diff", ["MODEL PAIR:", "SELECTION:"]),
            ("search-q", ["MODEL PAIR", "SELECTION:", "TEXT:", "THREADS:"]),
            ("apply", ["OUTPUT:", "CHECKPOINT OUTPUT:", "THREADS:"]),
            ("calibrate", ["TEXT:", "OUTPUT", "THREADS:"]),
            ("eval", ["TEXT", "THREADS:"]),
            ("docs", ["OUTPUT"]),
        ]
        for (verb, groups) in expected {
            let help = try lopper([verb, "--help"])
            XCTAssertEqual(help.status, 0, help.error)
            for group in groups { XCTAssertTrue(help.output.contains(group), "\(verb) --help lacks \(group):\n\(help.output)") }
            for flag in ["--seq-len", "--max-sequences", "--tokenizer"] where groups.contains(where: { $0.hasPrefix("TEXT") }) {
                XCTAssertTrue(help.output.contains(flag), "\(verb) --help lacks \(flag)")
            }
            if groups.contains("OUTPUT:") || groups.contains(where: { $0.hasPrefix("OUTPUT") }) {
                XCTAssertTrue(help.output.contains("--overwrite"), "\(verb) --help lacks --overwrite")
            }
        }
        // A bad option is one line too.
        let bad = try lopper(["prune", "--nonsense"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.error.split(separator: "\n").count, 1, bad.error)
    }
}
