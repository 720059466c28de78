import Foundation
import XCTest
import LopperCore
import LopperLua

/// The REPL's `try`, `plugins` and `reload` on a loaded pair, in process.
final class ReplTryTests: XCTestCase {
    func testTryRunsAMethodOnOneTensorAndReload() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let lua = try LuaState()
        defer { lua.close() }
        var output = "", errors = ""
        let session = try ReplSession(lua: lua, output: { output += $0 }, errorOutput: { errors += $0 })
        try lua.run("base = lopper.load(...); ft = lopper.load(select(2, ...)); delta = lopper.delta(base, ft)",
                    arguments: [.string(fixture.base), .string(fixture.finetuned)])
        let name = "model.layers.0.mlp.up_proj.weight"
        XCTAssertEqual(session.feed("r = try('magnitude', '\(name)', {rate = 0.75, seed = 3})"), .done, errors)
        XCTAssertTrue(output.contains("magnitude 2.0.0 on \(name) [128,256], seed 3"), output)
        XCTAssertTrue(output.contains("25.000%"), output)
        XCTAssertEqual(try lua.run("return r:count_nonzero()").first?.number, Double(128 * 256 / 4))

        // A plugin typed at the prompt, multi-line.
        output = ""
        XCTAssertEqual(session.feed("mine = { name = 'third', version = '0', api = 2, summary = 's',"), .incomplete)
        XCTAssertEqual(session.feed("  prune = function(d, ctx) ctx.report('answer', 42); return d * (1/3) end }"), .done, errors)
        XCTAssertEqual(session.feed("t = try(mine, '\(name)')"), .done, errors)
        XCTAssertTrue(output.contains("answer"), output)
        XCTAssertTrue(output.contains("42"), output)
        let expected = try fixture.delta(name).map { $0 / 3 }
        let got = try XCTUnwrap(lua.run("return t").first?.tensor).floats()
        for (a, b) in zip(got, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }

        // An edited plugin file is read again after reload().
        let path = fixture.folder + "/edit.lua"
        func writePlugin(_ factor: Double) throws {
            try "return { name = 'edit', version = '1', api = 2, summary = 's', prune = function(d) return d * \(factor) end }"
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        try writePlugin(2)
        XCTAssertEqual(session.feed("a = try('\(path)', '\(name)')"), .done, errors)
        try writePlugin(4)
        XCTAssertEqual(session.feed("b = try('\(path)', '\(name)')"), .done, errors)
        XCTAssertEqual(try lua.run("return (b - a):norm(1)").first?.number, 0, "cached until reload")
        XCTAssertEqual(session.feed("reload()"), .done, errors)
        XCTAssertEqual(session.feed("c = try('\(path)', '\(name)')"), .done, errors)
        XCTAssertEqual(try XCTUnwrap(lua.run("return (c - a * 2):norm(1)").first?.number), 0, accuracy: 1e-6)

        XCTAssertEqual(session.feed("plugins.dare"), .done)
        XCTAssertTrue(output.contains("dare.lua"), output)
        errors = ""
        XCTAssertEqual(session.feed("try('dare', 'nope')"), .failed)
        XCTAssertTrue(errors.contains("no tensor \"nope\""), errors)

        // Seeds are non-negative integers, never silently 0 (issue 10, class 9); a
        // parameter table's __tostring runs protected.
        for (call, expected) in [
            ("try('dare', '\(name)', {rate = 0.5, seed = 1.5})", "try: seed must be a non-negative integer, got 1.5"),
            ("try('dare', '\(name)', {rate = 0.5, seed = -1})", "got -1"),
            ("try('dare', '\(name)', {rate = 0.5, seed = 'x'})", "got \"x\""),
            ("try('dare', '\(name)', {rate = setmetatable({}, {__tostring = function() error('no text') end})})", "no text"),
        ] {
            errors = ""
            XCTAssertEqual(session.feed(call), .failed, call)
            XCTAssertTrue(errors.contains(expected), "\(call): \(errors)")
        }
        XCTAssertEqual(session.feed("s = try('dare', '\(name)', {rate = 0.5, seed = '7'})"), .done, errors)
    }
}
