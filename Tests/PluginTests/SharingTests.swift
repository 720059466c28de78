import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// Sharing plugins: new, test, pack, install (checked first) and select by version;
/// tampered packages refused; `plugin check` catching what a shared plugin must not do.
final class SharingTests: XCTestCase {
    var root = ""
    var environment: [String: String] { ["XDG_DATA_HOME": root + "/home", "LOPPER_PLUGIN_PATH": ""] }

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "lopper-sharing-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    @discardableResult
    func lopper(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> (output: String, error: String) {
        let run = try LopperBinary.run(arguments, environment: environment)
        XCTAssertEqual(run.status, status, "lopper \(arguments.joined(separator: " ")):\n\(run.output)\n\(run.error)", file: file, line: line)
        return (run.output, run.error)
    }

    /// The acceptance path: a plugin made by `plugin new`, edited, tested, packed,
    /// installed in a fresh user folder and selected by name@version, end to end.
    func testNewEditTestPackInstallAndSelectByVersion() throws {
        let folder = root + "/work/halfdare", plugin = folder + "/plugin.lua"
        try lopper(["plugin", "new", "halfdare", "--dir", root + "/work"])
        try lopper(["plugin", "test", folder])
        // Edit: version 1.0.0; then 1.1.0 doubles the kept entries (and says so in its test).
        let scaffold = try String(contentsOfFile: plugin, encoding: .utf8)
        try scaffold.replacingOccurrences(of: "version = \"0.1.0\"", with: "version = \"1.0.0\"").write(toFile: plugin, atomically: true, encoding: .utf8)
        try lopper(["plugin", "pack", folder, "--out", root + "/halfdare-1.0.0.lopper.tar"])
        let v1 = scaffold.replacingOccurrences(of: "version = \"0.1.0\"", with: "version = \"1.1.0\"")
            .replacingOccurrences(of: "properties = { unbiased = true },", with: "")
            .replacingOccurrences(of: "default = 1, min = 0", with: "default = 2, min = 0")
        try v1.write(toFile: plugin, atomically: true, encoding: .utf8)
        try lopper(["plugin", "test", folder], expect: 1)   // its rescale test now fails: install refuses it too
        let tests = folder + "/tests.lua"
        try (try String(contentsOfFile: tests, encoding: .utf8)).replacingOccurrences(of: "value - 0.5", with: "value - 1.0")
            .write(toFile: tests, atomically: true, encoding: .utf8)
        try lopper(["plugin", "test", folder])
        let packed = try lopper(["plugin", "pack", folder, "--out", root + "/halfdare-1.1.0.lopper.tar"]).output
        let digest = try SHA256.hex(file: root + "/halfdare-1.1.0.lopper.tar")
        XCTAssertTrue(packed.contains("SHA-256 \(digest)"), packed)
        XCTAssertEqual(try String(contentsOfFile: root + "/halfdare-1.1.0.lopper.tar.sha256", encoding: .utf8), "\(digest)  halfdare-1.1.0.lopper.tar\n")

        for version in ["1.1.0", "1.0.0"] {
            let installed = try lopper(["plugin", "install", root + "/halfdare-\(version).lopper.tar"]).output
            XCTAssertTrue(installed.contains("its own tests: 3 passed"), installed)
            XCTAssertTrue(installed.contains("installed halfdare \(version)"), installed)
        }
        let listed = try lopper(["plugin", "list"]).output
        for version in ["1.0.0", "1.1.0"] {
            XCTAssertTrue(listed.contains(where: { _ in true }) && listed.split(separator: "\n").contains { $0.contains("halfdare") && $0.contains(version) && $0.contains("user") && $0.contains("passed") }, listed)
        }
        // name@version selects; the newest is the default; the output records which.
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let weight = "model.layers.0.mlp.up_proj.weight"
        var kept: [String: Float] = [:]
        for method in ["halfdare@1.0.0", "halfdare@1.1.0", "halfdare"] {
            let out = root + "/out-" + method
            try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", method, "--set", "rate=0.5",
                        "--output", "delta", "--quiet", "--out", out])
            let checkpoint = try Checkpoint(path: out)
            let metadata = checkpoint.shards[0].metadata
            XCTAssertEqual(metadata["lopper.method_version"], method == "halfdare@1.0.0" ? "1.0.0" : "1.1.0")
            XCTAssertEqual(metadata["lopper.method_origin"], "user")
            let pruned = try checkpoint.tensor(weight).floats(), delta = try fixture.delta(weight)
            let ratios = zip(pruned, delta).filter { $0.0 != 0 }.map { Float(Double($0.0) / $0.1) }
            kept[method] = ratios.reduce(0, +) / Float(ratios.count)
            try lopper(["reproduce", out, "--base", fixture.base, "--finetuned", fixture.finetuned])
        }
        XCTAssertEqual(kept["halfdare@1.0.0"] ?? 0, 2, accuracy: 1e-4)   // 1 / (1 - p)
        XCTAssertEqual(kept["halfdare@1.1.0"] ?? 0, 4, accuracy: 1e-4)   // scale 2
        XCTAssertEqual(kept["halfdare"], kept["halfdare@1.1.0"])
        let missing = try lopper(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "halfdare@9.9.9",
                                  "--out", root + "/none"], expect: 1).error
        XCTAssertTrue(missing.contains("no version 9.9.9 of method 'halfdare'; found 1.1.0 (user), 1.0.0 (user)"), missing)

        // The same version with other code needs --overwrite; the same code again is a no-op.
        try v1.replacingOccurrences(of: "default = 2,", with: "default = 3,").write(toFile: plugin, atomically: true, encoding: .utf8)
        try (try String(contentsOfFile: tests, encoding: .utf8)).replacingOccurrences(of: "value - 1.0", with: "value - 1.5")
            .write(toFile: tests, atomically: true, encoding: .utf8)
        let refused = try lopper(["plugin", "install", folder], expect: 1).error
        XCTAssertTrue(refused.contains("halfdare 1.1.0 is installed with other code"), refused)
        try lopper(["plugin", "install", folder, "--overwrite"])
        XCTAssertTrue(try lopper(["plugin", "install", folder]).output.contains("already installed with the same code"))
    }

    /// A changed byte anywhere in a packed file (content, header, padding, trailer) is refused.
    func testTamperedPackagesAreRefused() throws {
        let folder = root + "/work/clean"
        try lopper(["plugin", "new", "clean", "--dir", root + "/work"])
        let package = root + "/clean.lopper.tar"
        try lopper(["plugin", "pack", folder, "--out", package])
        let original = try Data(contentsOf: URL(fileURLWithPath: package))
        let source = try XCTUnwrap(original.range(of: Data("return {".utf8))).lowerBound
        let cases: [(String, Int, String)] = [
            ("a byte of plugin.lua", source + 2, "plugin.lua does not match its SHA-256"),
            ("a header's name", 1, "not in the canonical form"),
            ("padding", 512 + 449 + 3, "not in the canonical form"),
            ("the trailer", original.count - 10, "not in the canonical form"),
        ]
        for (label, offset, culprit) in cases {
            var bytes = original
            bytes[offset] ^= 0x20
            let tampered = root + "/tampered.lopper.tar"
            try bytes.write(to: URL(fileURLWithPath: tampered))
            let error = try lopper(["plugin", "install", tampered], expect: 1).error
            XCTAssertTrue(error.contains(culprit), "\(label): \(error)")
        }
        // Both files rewritten consistently: the .sha256 beside it (or --sha256) catches it.
        var bytes = original
        bytes[source + 2] ^= 0x20
        let copy = root + "/copy.lopper.tar"
        try original.write(to: URL(fileURLWithPath: copy))
        try "\(SHA256.hex(bytes))  copy.lopper.tar\n".write(toFile: copy + ".sha256", atomically: true, encoding: .utf8)
        XCTAssertTrue(try lopper(["plugin", "install", copy], expect: 1).error.contains("was changed after packing"))
        XCTAssertTrue(try lopper(["plugin", "install", package, "--sha256", String(repeating: "0", count: 64)], expect: 1).error.contains("is not the"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/home/lopper/plugins/clean"))
        try lopper(["plugin", "install", package, "--sha256", SHA256.hex(original)])
    }

    func testCheckCatchesNondeterminismNaNAndFalseClaims() throws {
        let header = "name = \"bad\", version = \"1\", api = 2, summary = \"s\","
        let cases: [(String, String)] = [
            ("return { \(header) prune = function(d, ctx) return d * (1 + math.random()) end }", "not deterministic"),
            ("local calls = 0\nreturn { \(header) prune = function(d, ctx) calls = calls + 1; return d * calls end }", "not deterministic"),
            ("return { \(header) prune = function(d, ctx) return d / d:abs() end }", "NaN or infinite"),
            ("return { \(header) properties = { unbiased = true }, prune = function(d, ctx) return d * ctx.rng:bernoulli(1 - ctx.params.rate) end }",
             "declares unbiased = true, but E[D'] != D"),
            // Sum-preserving but biased by sign: positives doubled, negatives dropped.
            ("return { \(header) properties = { unbiased = true }, prune = function(d, ctx) local s = d:sign(); return d * (s + 1) * 0.5 * 2 end }",
             "E[D'] != D"),
            ("return { \(header) properties = { unbiased = true }, score = function(d) return d:abs() end }", "with no spread over seeds"),
            ("return { \(header) properties = { fast = true }, prune = function(d) return d end }", "'fast' is not a property Lopper can check"),
        ]
        for (source, culprit) in cases {
            XCTAssertThrowsError(try PluginCheck.full(try Plugin(source: source, chunkName: "=bad", path: "bad.lua"), tests: nil, testsFile: "t")) { error in
                XCTAssertTrue("\(error)".contains(culprit), "expected '\(culprit)' in: \(error)")
            }
        }
        let dare = try String(contentsOfFile: PipelineFixture.pluginsFolder + "/dare.lua", encoding: .utf8)
            .replacingOccurrences(of: "api = 2,", with: "api = 2, properties = { unbiased = true },")
        let lines = try PluginCheck.full(try Plugin(source: dare, chunkName: "=dare", path: "dare.lua"), tests: nil, testsFile: "t")
        XCTAssertTrue(lines.contains { $0.hasPrefix("unbiased: E[D'] = D") }, lines.joined(separator: "\n"))
    }

    func testSelfTestsRunInOrderAndNameTheFailingLine() throws {
        let plugin = try PipelineFixture.plugin("dare")
        let tests = """
        test("identity at rate 0", function() expect_near(plugin.prune(lopper.from_table({1, 2}), { rate = 0 }), {1, 2}) end)
        test("wrong on purpose", function()
          local out, report = plugin.prune(lopper.full({4, 8}, 1), { rate = 0.5 }, { seed = 2 })
          assert(report.rescale == 2, "rescale " .. tostring(report.rescale))
          expect_near(out:sum(), 1, 0.5, "sum")
        end)
        test("no io here", function() io.open("/etc/passwd") end)
        """
        let outcomes = try PluginSelfTest.run(tests, file: "dare.test.lua", plugin: plugin)
        XCTAssertEqual(outcomes.map(\.name), ["identity at rate 0", "wrong on purpose", "no io here"])
        XCTAssertNil(outcomes[0].failure)
        XCTAssertTrue(outcomes[1].failure?.contains("dare.test.lua:5: sum: value 1 is") == true, outcomes[1].failure ?? "")
        XCTAssertTrue(outcomes[2].failure?.contains("io") == true, outcomes[2].failure ?? "")
    }

    /// The literature plugins' hand-computed cases (NAME.test.lua beside each) pass, and
    /// every plugin that has tests passes the full check with them.
    func testBundledPluginsPassTheirOwnTests() throws {
        for name in ["breadcrumbs", "dare_l1", "della", "ties"] {
            let package = try PluginPackage.read(PipelineFixture.pluginsFolder + "/" + name + ".lua")
            let tests = try XCTUnwrap(package.tests, name)
            let plugin = try Plugin(source: package.source, chunkName: "@\(name).lua", path: name)
            let outcomes = try PluginSelfTest.run(tests, file: name + ".test.lua", plugin: plugin)
            XCTAssertGreaterThanOrEqual(outcomes.count, 2, name)
            for outcome in outcomes { XCTAssertNil(outcome.failure, "\(name): \(outcome.name)") }
            XCTAssertNoThrow(try PluginCheck.full(plugin, tests: tests, testsFile: name + ".test.lua"))
        }
        // A test file beside a plugin is not a plugin of its own.
        XCTAssertFalse(PluginCatalog.all().contains { $0.name.contains(".") })
    }

    func testVersionsOrderAsReleasesDo() {
        XCTAssertTrue(PluginVersion.isNewer("1.10.0", than: "1.9.2"))
        XCTAssertTrue(PluginVersion.isNewer("2.0.0", than: "2.0.0-beta.2"))
        XCTAssertTrue(PluginVersion.isNewer("2.0.0-beta.10", than: "2.0.0-beta.9"))
        XCTAssertFalse(PluginVersion.isNewer("1.0", than: "1.0.0"))
        XCTAssertFalse(PluginVersion.isNewer("1.0.0+build5", than: "1.0.0"))
    }
}
