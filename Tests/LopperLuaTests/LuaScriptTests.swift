import Foundation
import XCTest
import LopperLua

/// Runs every `.lua` file in Scripts/ (each asserts) through a trusted state, and
/// checks how `lopper run` reports script errors.
final class LuaScriptTests: XCTestCase {
    func testEveryScriptPasses() throws {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Scripts", withExtension: nil))
        let scripts = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertGreaterThanOrEqual(scripts.count, 3)
        for script in scripts {
            let lua = try LuaState()
            defer { lua.close() }
            do {
                try lua.run(file: folder.appendingPathComponent(script).path)
            } catch {
                XCTFail("\(script): \(error)")
            }
        }
    }

    func testScriptErrorReportsLineAndTracebackAndFails() throws {
        let path = try temporaryScript("""
        local function inner()
          local x = lopper.zeros({2})
          return x + lopper.zeros({3})
        end
        inner()
        """)
        var output = ""
        let status = LuaScript.run(path: path, arguments: []) { output += $0 }
        XCTAssertEqual(status, 1)
        XCTAssertTrue(output.hasPrefix("\(path):3: add: shape [2] vs [3]\n"), output)
        XCTAssertTrue(output.contains("stack traceback:"), output)
        XCTAssertTrue(output.contains("\(path):5: in main chunk"), output)
    }

    func testSyntaxErrorFails() throws {
        let path = try temporaryScript("local x = = 1\n")
        var output = ""
        XCTAssertEqual(LuaScript.run(path: path, arguments: []) { output += $0 }, 1)
        XCTAssertTrue(output.hasPrefix("\(path):1:"), output)
    }

    func testArgTableAndVarargsLikeTheLuaInterpreter() throws {
        let path = try temporaryScript("""
        assert(arg[0] == select(1, ...) or true)
        assert(arg[1] == "first" and arg[2] == "2" and #arg == 2, "arg table")
        local a, b = ...
        assert(a == "first" and b == "2", "varargs")
        result = arg[0]
        """)
        let lua = try LuaState()
        defer { lua.close() }
        try lua.run(file: path, arguments: ["first", "2"])
        XCTAssertEqual(lua.global("result").string, path)
        XCTAssertEqual(LuaScript.run(path: path, arguments: ["first", "2"]), 0)
    }

    func testMissingScriptFails() {
        var output = ""
        XCTAssertEqual(LuaScript.run(path: "/nonexistent/script.lua", arguments: []) { output += $0 }, 1)
        XCTAssertTrue(output.contains("cannot open /nonexistent/script.lua"), output)
    }

    private func temporaryScript(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "lopper-test-\(UUID().uuidString).lua"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
