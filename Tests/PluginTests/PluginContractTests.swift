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

    func header(_ hooks: String, params: String = "") -> String {
        "return { name = \"custom\", version = \"0.1.0\", api = 2, summary = \"test\", defaults = { rate = 0.5 }, params = { \(params) },\n\(hooks)\n}\n"
    }

    func testEveryBundledPluginLoadsAndPassesTheCheck() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: PipelineFixture.pluginsFolder).filter { $0.hasSuffix(".lua") && !$0.hasSuffix(".test.lua") }
        XCTAssertEqual(Set(files), ["dare.lua", "darex_q.lua", "structural.lua", "magnitude.lua", "wanda.lua", "breadcrumbs.lua", "dare_l1.lua", "della.lua", "ties.lua", "darex_l2.lua"])
        for file in files {
            let plugin = try Plugin(path: PipelineFixture.pluginsFolder + "/" + file)
            XCTAssertEqual(plugin.name + ".lua", file)
            XCTAssertEqual(plugin.schema.spec("rate")?.type, .number)
            XCTAssertFalse(try PluginCheck.run(plugin).isEmpty)
            let source = try String(contentsOfFile: PipelineFixture.pluginsFolder + "/" + file, encoding: .utf8)
            let lines = source.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
            XCTAssertLessThanOrEqual(lines.count, 30, "\(file) should read like its equation")
        }
    }

    func testSchemaIsReadAndSettingsAreValidated() throws {
        let plugin = try PipelineFixture.plugin("dare")
        XCTAssertEqual(plugin.schema.spec("rate")?.defaultValue, .number(0.9))
        XCTAssertEqual(try PipelineFixture.plugin("magnitude").schema.spec("rescale")?.choices ?? [], ["none", "dare", "q", "l1"])
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "ratio=0.5")])) { error in
            XCTAssertTrue("\(error)".contains("unknown parameter 'ratio'"), "\(error)")
            XCTAssertTrue("\(error)".contains("rate (number, default 0.9, 0..1)"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "rate=1.5")])) { error in
            XCTAssertTrue("\(error)".contains("outside 0..1"), "\(error)")
        }
        XCTAssertThrowsError(try plugin.schema.validate([try Setting(parsing: "rescale=sqrt")]))
    }

    /// A parameter the chosen mode ignores is an error naming it and the mode it needs.
    func testIgnoredParametersAreRefused() throws {
        let darexQ = try PipelineFixture.plugin("darex_q"), magnitude = try PipelineFixture.plugin("magnitude")
        let refused: [(ParamSchema, [String], String)] = [
            (darexQ.schema, ["rate=0.999", "q=0.005"], "'q' of method darex_q is only used with mode=fixed (here mode=closed_form)"),
            (darexQ.schema, ["mode=fixed", "q=0.5", "eta=2"], "'eta' of method darex_q is only used with mode=analytical"),
            (magnitude.schema, ["q=0.5"], "'q' of method magnitude is only used with rescale=q"),
            (magnitude.schema, ["granularity=row", "n=3"], "'n' of method magnitude is only used with granularity=nm"),
            (magnitude.schema, ["m=8"], "only used with granularity=nm (here granularity=tensor)"),
        ]
        for (schema, settings, expected) in refused {
            XCTAssertThrowsError(try schema.validate(try settings.map(Setting.init(parsing:))), settings.joined(separator: " ")) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in: \(error)")
            }
        }
        for (schema, settings) in [(darexQ.schema, ["mode=fixed", "q=0.005"]), (darexQ.schema, ["mode=analytical", "eta=3"]),
                                   (magnitude.schema, ["rescale=q", "q=0.5"]), (magnitude.schema, ["granularity=nm", "n=1", "m=2"])] {
            XCTAssertNoThrow(try schema.validate(try settings.map(Setting.init(parsing:))), settings.joined(separator: " "))
        }
        // Per-tensor settings are checked where they apply.
        let settings = [try Setting(parsing: "*.up_proj.weight:q=0.3")]
        XCTAssertNoThrow(try darexQ.schema.validate(settings))
        XCTAssertThrowsError(try darexQ.schema.resolve(settings, name: "model.layers.0.mlp.up_proj.weight", layer: 0, layerCount: 2))
    }

    func testBadPluginTablesAreRefusedWithTheFileAndField() throws {
        let prune = "prune = function(d) return d end"
        let cases: [(String, String)] = [
            ("return 42", "must return a table"),
            ("return { name = \"x\", version = \"1\", api = 1, summary = \"s\", \(prune) }", "'api' must be 2"),
            ("return { name = \"x\", version = \"1\", api = 2, summary = \"s\" }", "needs one hook"),
            (header("prune = function(d) return d end, score = function(d) return d end"), "one primary hook, not both prune and score"),
            (header("apply = function(ctx) return nil end"), "hook 'apply' is from plugin API 1"),
            (header("\(prune), rescale = function() return 1 end"), "'rescale' goes with score only"),
            (header("prune = 3"), "hook 'prune' must be a function"),
            (header(prune, params: "k = { type = \"float\" }"), "type must be number"),
            (header(prune, params: "k = { type = \"number\", default = 2, max = 1 }"), "outside its min/max"),
            (header(prune, params: "rate = { type = \"number\", default = 0.5 }"), "parameter 'rate' belongs to the host"),
            (header("score = function(d) return d end", params: "granularity = { type = \"string\" }"), "'granularity' belongs to the host"),
            (header(prune, params: "k = { type = \"number\", only = { mode = \"x\" } }"), "only names 'mode', which is not a parameter"),
            ("return { name = \"x\", version = \"1\", api = 2, summary = \"s\", defaults = { speed = 1 }, \(prune) }",
             "defaults: 'speed' is not a host parameter"),
            ("return { name = \"x\", version = \"1\", api = 2, summary = \"s\", defaults = { rate = 3 }, \(prune) }", "outside its min/max"),
            ("return { name = \"../../../escaped\", version = \"1\", api = 2, summary = \"s\", \(prune) }", "field 'name' may hold only"),
            ("return { name = \"x\", version = \"1/../2\", api = 2, summary = \"s\", \(prune) }", "field 'version' may hold only"),
            ("return { name = \"x\", version = \"1\", api = 2, summary = \"a\\27[2Jb\", \(prune) }", "field 'summary' may hold only"),
            // The manifest is read raw: the plugin's string library and metatables do not take part.
            ("""
             local m = string.match
             string.match = function(s, p, ...) if p == "^[%w_%-]+$" then return s end return m(s, p, ...) end
             return { name = "../../../escaped", version = "1", api = 2, summary = "s", \(prune) }
             """, "field 'name' may hold only"),
            ("return setmetatable({ version = \"1\", api = 2, summary = \"s\", \(prune) }, { __index = function() return \"ok\" end })",
             "field 'name' must be a non-empty string"),
            ("return { name = \"x\" ", "'}' expected"),
        ]
        for (source, expected) in cases {
            let path = try temporaryPlugin(source)
            XCTAssertThrowsError(try Plugin(path: path), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in: \(error)")
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
            (header("prune = function(delta, ctx)\n  return 7\nend"), "prune must return the pruned delta (a tensor) or nil"),
            (header("prune = function(delta, ctx)\n  return os.execute('true')\nend"), "'os' is not available"),
            (header("prune = function(delta, ctx)\n  return delta * ctx.rng:bernoulli(2)\nend"), "outside [0, 1]"),
            (header("prune = function(delta, ctx)\n  return ctx.rng:bernoulli(0.5)\nend"), "BOOL"),
            (header("prune = function(delta, ctx)\n  return delta + ctx.rng:bernoulli(0.5)\nend"), "add: dtype BOOL"),
            (header("score = function(delta, ctx)\n  return 1\nend"), "score must return a tensor"),
            (header("score = function(delta, ctx)\n  return delta:abs()\nend, rescale = function() return 'x' end"), "rescale must return a finite number"),
            (header("""
             prune = function(delta, ctx)
               if kept then kept.report("x", 1) end
               kept = ctx
               return delta
             end
             """), "a ctx is valid only during its own tensor's hook"),
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
        // A user writes DARE eagerly by hand from the rng and where; the result matches
        // the reference plugin, which runs fused, bit for bit.
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let source = header("""
        prune = function(delta, ctx)
          local p = ctx.params.rate
          local mask = ctx.rng:bernoulli(1 - p)
          ctx.report("kept_by_hand", mask:count_nonzero())
          return delta:where(mask, 0) / (1 - p)
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

extension PluginContractTests {
    /// The same expressions written lazily and forced eager (`clone` computes the delta
    /// first) give byte-identical outputs through the whole pipeline.
    func testLazyAndEagerPluginsWriteTheSameBytes() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let expressions = [
            "d * ctx.rng:bernoulli(0.3) / 0.3",
            "ctx.rng:bernoulli(0.5) * (d * 2)",
            "(d - d:abs() * 0.5) / (1 + 0.25) * ctx.rng:stream('x'):bernoulli(0.8)",
            "-d:sign() * 0.001 + d * ctx.rng:bernoulli(0.9)",
            "1 - (2 / (d:abs() + 1))",
        ]
        for (index, expression) in expressions.enumerated() {
            for (label, prefix) in [("lazy", ""), ("eager", "d = d:clone()\n")] {
                let source = header("prune = function(delta, ctx)\nlocal d = delta\n\(prefix)return \(expression)\nend")
                try fixture.prune(try Plugin(path: try temporaryPlugin(source)), [], out: "\(label)\(index)", seed: 4)
            }
            for name in PipelineFixture.prunable {
                let lazy = try fixture.tensor("lazy\(index)", name), eager = try fixture.tensor("eager\(index)", name)
                XCTAssertEqual(lazy.dtype, .bf16)
                XCTAssertEqual(Array(UnsafeRawBufferPointer(start: lazy.data, count: lazy.byteCount)),
                               Array(UnsafeRawBufferPointer(start: eager.data, count: eager.byteCount)), "\(expression): \(name)")
            }
        }
    }

    /// At rate 0 the host keeps the fine-tuned tensor without calling the hook.
    func testRateZeroIsTheIdentity() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let source = header("prune = function(delta, ctx) error('not called at rate 0') end")
        try fixture.prune(try Plugin(path: try temporaryPlugin(source)), ["rate=0"], out: "same")
        for name in PipelineFixture.prunable {
            XCTAssertEqual(try fixture.tensor("same", name).floats(), try Checkpoint(path: fixture.finetuned).tensor(name).floats(), name)
        }
    }
}
