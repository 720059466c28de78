import XCTest
import LopperLua

/// Errors crossing the bridge in both directions, and Swift functions called from Lua.
final class LuaBridgeTests: XCTestCase {
    func testLuaErrorReachesSwiftWithMessageAndTraceback() throws {
        let lua = try LuaState()
        defer { lua.close() }
        XCTAssertThrowsError(try lua.run("local function f() error('boom') end\nf()", name: "@chunk.lua")) { error in
            let luaError = error as? LuaError
            XCTAssertEqual(luaError?.message, "chunk.lua:1: boom")
            XCTAssertTrue(luaError?.traceback.hasPrefix("stack traceback:") ?? false)
            XCTAssertTrue(luaError?.traceback.contains("chunk.lua:2: in main chunk") ?? false, luaError?.traceback ?? "")
        }
        // The state is still usable afterwards.
        XCTAssertEqual(try lua.run("return 6 * 7").first?.number, 42)
    }

    func testSwiftErrorBecomesLuaErrorAtCallerLine() throws {
        let lua = try LuaState()
        defer { lua.close() }
        struct Failure: Error, CustomStringConvertible { var description: String { "swift says no" } }
        lua.register("fail") { _ in throw Failure() }
        let results = try lua.run("""
        local ok, message = pcall(fail)
        local ok2, message2 = pcall(function()
          fail()
        end)
        return ok, message, message2
        """, name: "@t.lua")
        XCTAssertEqual(results[0].boolean, false)
        XCTAssertEqual(results[1].string, "swift says no")  // called directly by pcall: no Lua caller line
        XCTAssertEqual(results[2].string, "t.lua:3: swift says no")
    }

    func testSwiftFunctionsTakeArgumentsAndReturnSeveralResults() throws {
        let lua = try LuaState()
        defer { lua.close() }
        lua.register("divmod") { stack in
            let a = try stack.integer(1, "divmod"), b = try stack.integer(2, "divmod")
            guard b != 0 else { throw LuaError("divmod: division by zero") }
            stack.push(a / b)
            stack.push(a % b)
            return 2
        }
        let results = try lua.run("local q, r = divmod(17, 5) return q, r, select('#', divmod(1, 1))")
        XCTAssertEqual(results.map { $0.number }, [3, 2, 2])
        XCTAssertThrowsError(try lua.run("divmod(1, 0)", name: "@d.lua")) { error in
            XCTAssertEqual((error as? LuaError)?.message, "d.lua:1: divmod: division by zero")
        }
        XCTAssertThrowsError(try lua.run("divmod('x', 1)", name: "@d.lua")) { error in
            XCTAssertEqual((error as? LuaError)?.message, "d.lua:1: bad argument #1 to 'divmod' (integer expected, got string)")
        }
    }

    func testNestedCallsSwiftToLuaToSwift() throws {
        let lua = try LuaState()
        defer { lua.close() }
        // apply(f, x) calls the Lua function f from Swift in protected mode.
        lua.register("apply") { stack in
            stack.pushCopy(of: 1)
            stack.pushCopy(of: 2)
            try stack.call(arguments: 1, results: 1)
            return 1
        }
        XCTAssertEqual(try lua.run("return apply(function(x) return x * 2 end, 21)").first?.number, 42)
        // An error inside keeps its own location and is not prefixed twice.
        XCTAssertThrowsError(try lua.run("apply(function(x) error('inner') end, 1)", name: "@n.lua")) { error in
            XCTAssertEqual((error as? LuaError)?.message, "n.lua:1: inner")
        }
        // Deep recursion through the bridge ends in a Lua error, not a crash.
        XCTAssertThrowsError(try lua.run("local function r(x) return apply(r, x) end return r(1)"))
    }

    func testNonStringErrorObjects() throws {
        let lua = try LuaState()
        defer { lua.close() }
        XCTAssertThrowsError(try lua.run("error({code = 1})")) { error in
            XCTAssertEqual((error as? LuaError)?.message, "(error object is a table value)")
        }
        XCTAssertThrowsError(try lua.run("error(setmetatable({}, {__tostring = function() return 'custom' end}))")) { error in
            XCTAssertEqual((error as? LuaError)?.message, "custom")
        }
    }

    func testValuesRoundTrip() throws {
        let lua = try LuaState()
        defer { lua.close() }
        lua.setGlobal("n", .number(2.5))
        lua.setGlobal("s", .string("héllo"))
        lua.setGlobal("b", .boolean(true))
        let results = try lua.run("return n * 2, s .. '!', not b, nil, {}", arguments: [])
        XCTAssertEqual(results[0].number, 5)
        XCTAssertEqual(results[1].string, "héllo!")
        XCTAssertEqual(results[2].boolean, false)
        if case .nil = results[3] {} else { XCTFail("expected nil") }
        if case .other(let type) = results[4] { XCTAssertEqual(type, "table") } else { XCTFail("expected table") }
    }

    func testInterruptStopsARunningScript() throws {
        let lua = try LuaState()
        defer { lua.close(); LuaInterrupt.clear() }
        let thread = Thread { usleep(100_000); LuaInterrupt.request() }
        thread.start()
        XCTAssertThrowsError(try lua.run("local x = 0 while true do x = x + 1 end", name: "@spin.lua")) { error in
            XCTAssertTrue((error as? LuaError)?.message.hasSuffix("interrupted") ?? false, "\(error)")
        }
        // Even a script that catches the error is stopped again at the next check.
        XCTAssertThrowsError(try lua.run("while true do pcall(function() while true do end end) end"))
        LuaInterrupt.clear()
        XCTAssertEqual(try lua.run("return 1").first?.number, 1)
    }
}
