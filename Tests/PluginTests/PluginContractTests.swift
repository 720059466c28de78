import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// The plugin contract: loading and validation, parameters, the hooks, and clear
/// errors for plugins that fail, loop or return the wrong thing, with no output left.
final class PluginContractTests: XCTestCase {
    func temporaryPlugin(_ source: String, name: String = "custom") throws -> String {
        let folder = NSTemporaryDirectory() + "lopper-plugins-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + name + ".lua"
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func header(_ hooks: String, params: String = "rate = { type = \"number\", default = 0.5, min = 0, max = 1 }") -> String {
        "return { name = \"custom\", version = \"0.1.0\", api = 1, summary = \"test\", params = { \(params) },\n\(hooks)\n}\n"
    }

    func testEveryBundledPluginLoadsAndPassesTheCheck() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: PipelineFixture.pluginsFolder).filter { $0.hasSuffix(".lua") }
        XCTAssertEqual(Set(files), ["dare.lua", "darex_q.lua", "structural.lua", "magnitude.lua", "wanda.lua"])
        for file in files {
            let plugin = try Plugin(path: PipelineFixture.pluginsFolder + "/" + file)
            XCTAssertEqual(plugin.name + ".lua", file)
            XCTAssertEqual(plugin.schema.spec("rate")?.type, .number)
            XCTAssertFalse(try PluginCheck.run(plugin).isEmpty)
        }
    }

    func testSchemaIsReadAndSettingsAreValidated() throws {
        let plugin = try PipelineFixture.plugin("dare")
        XCTAssertEqual(plugin.schema.spec("rate")?.defaultValue, .number(0.9))
        XCTAssertEqual(plugin.schema.spec("rescale")?.choices ?? [], ["dare", "q", "l1", "none"])
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "ratio=0.5")])) { error in
            XCTAssertTrue("\(error)".contains("unknown parameter 'ratio'"), "\(error)")
            XCTAssertTrue("\(error)".contains("rate (number, default 0.9, 0..1)"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "rate=1.5")])) { error in
            XCTAssertTrue("\(error)".contains("outside 0..1"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "rescale=sqrt")]))
    }

    func testBadPluginTablesAreRefusedWithTheFileAndField() throws {
        let cases: [(String, String)] = [
            ("return 42", "must return a table"),
            ("return { name = \"x\", version = \"1\", api = 2, summary = \"s\", prune = function() end }", "'api' must be 1"),
            ("return { name = \"x\", version = \"1\", api = 1, summary = \"s\" }", "needs a hook"),
            (header("prune = 3"), "hook 'prune' must be a function"),
            (header("prune = function() end", params: "rate = { type = \"float\" }"), "type must be number"),
            (header("prune = function() end", params: "rate = { type = \"number\", default = 2, max = 1 }"), "outside its min/max"),
            (header("score = function(d) return d end", params: "k = { type = \"integer\", default = 3 }"), "needs a 'rate' parameter"),
            ("return { name = \"x\" ", "'}' expected"),
        ]
        for (source, expected) in cases {
            let path = try temporaryPlugin(source)
            XCTAssertThrowsError(try Plugin(path: path), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
                XCTAssertTrue("\(error)".contains(path), "\(error)")
            }
        }
    }

    func testFailingPluginsNameTheLineAndTensorAndLeaveNoOutput() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let limits = LuaState.Limits(instructions: 2_000_000, memory: 64 << 20)
        let cases: [(String, String)] = [
            (header("prune = function(delta, ctx)\n  error(\"boom\")\nend"), "custom.lua:3: boom"),
            (header("prune = function(delta, ctx)\n  while true do end\nend"), "instruction"),
            (header("prune = function(delta, ctx)\n  return lopper.zeros({3, 3})\nend"), "returned shape [3,3] for tensor \"model.layers.0.mlp.up_proj.weight\""),
            (header("prune = function(delta, ctx)\n  return delta / 0\nend"), "NaN or infinite"),
            (header("prune = function(delta, ctx)\n  return 7\nend"), "prune must return a tensor or nil"),
            (header("prune = function(delta, ctx)\n  return os.execute('true')\nend"), "'os' is not available"),
            (header("apply = function(ctx)\n  return ctx:dare(2)\nend"), "outside [0, 1]"),
        ]
        for (source, expected) in cases {
            let plugin = try Plugin(path: try temporaryPlugin(source), limits: limits)
            XCTAssertThrowsError(try fixture.prune(plugin, [], out: "failed")) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in: \(error)")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.folder).filter { $0 != "base" && $0 != "finetuned" }
            XCTAssertEqual(leftovers, [], "partial output left behind")
        }
    }

    func testBadInputIsReportedBeforeAnythingIsWritten() throws {
        let fixture = try PipelineFixture(nanIn: "model.layers.1.mlp.up_proj.weight")
        defer { fixture.remove() }
        XCTAssertThrowsError(try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.5"])) { error in
            XCTAssertTrue("\(error)".contains("model.layers.1.mlp.up_proj.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.folder + "/out"))
        var configuration = PruneConfiguration(basePath: fixture.base, finetunedPath: fixture.base + "/../nowhere", outputPath: fixture.folder + "/x")
        XCTAssertThrowsError(try Pruner(configuration, method: try PipelineFixture.plugin("dare")))
        configuration = PruneConfiguration(basePath: fixture.base, finetunedPath: fixture.finetuned, outputPath: fixture.folder + "/x")
        configuration.settings = [try Setting(parsing: "rate=2")]
        XCTAssertThrowsError(try Pruner(configuration, method: try PipelineFixture.plugin("dare"))) { error in
            XCTAssertTrue("\(error)".contains("valid parameters"), "\(error)")
        }
    }

    func testUserPluginsComposeTheSameKernelsAsTheReferenceOnes() throws {
        // A user writes DARE by hand from the rng, where and the reference rescale;
        // the result matches the fused reference plugin bit for bit.
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let source = header("""
        prune = function(delta, ctx)
          local p = ctx.params.rate
          local mask = ctx.rng:bernoulli(delta, 1 - p)
          ctx.report("kept_by_hand", mask:count_nonzero())
          return delta:where(mask, 0) * (1 / (1 - p))
        end
        """)
        let handmade = try Plugin(path: try temporaryPlugin(source))
        let report = try fixture.prune(handmade, ["rate=0.75"], out: "hand", seed: 9, output: .delta, dtype: .f32)
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.75"], out: "fused", seed: 9, output: .delta, dtype: .f32)
        for name in PipelineFixture.prunable {
            XCTAssertEqual(try fixture.tensor("hand", name).floats(), try fixture.tensor("fused", name).floats(), name)
        }
        XCTAssertNotNil(report.tensors.first { $0.action == "pruned" }?.figures["kept_by_hand"])
    }

    func testScoreHookSelectsAndRescales() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let source = header("""
        score = function(delta, ctx) return -delta:abs() end,
        rescale = function(ctx, delta, mask) return 2 end
        """)
        let report = try fixture.prune(try Plugin(path: try temporaryPlugin(source)), ["rate=0.5"], output: .delta)
        let name = "model.layers.0.self_attn.q_proj.weight"
        let pruned = try fixture.tensor("out", name).floats().map(Double.init)
        let original = try fixture.delta(name)
        let kept = pruned.indices.filter { pruned[$0] != 0 }
        XCTAssertEqual(kept.count, original.count / 2)
        // The smallest half was kept (score = -|delta|), doubled.
        let median = original.map(Swift.abs).sorted()[original.count / 2]
        for index in kept {
            XCTAssertLessThanOrEqual(Swift.abs(original[index]), median + 1e-7)
            XCTAssertEqual(pruned[index], 2 * original[index], accuracy: 1e-6)
        }
        XCTAssertEqual(report.tensors.first { $0.name == name }?.rescale, 2)
    }
}
