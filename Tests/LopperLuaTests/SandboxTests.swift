import XCTest
import LopperCore
import LopperLua

/// Every way out of the plugin sandbox fails with a clear message, and the state
/// (and the process) survive.
final class SandboxTests: XCTestCase {
    private func sandbox(instructions: Int = 5_000_000, memory: Int = 16 << 20, tensorMemory: Int = 64 << 20) throws -> LuaState {
        try LuaState(sandbox: .init(instructions: instructions, memory: memory, tensorMemory: tensorMemory))
    }

    private func assertFails(_ code: String, _ expected: String, in lua: LuaState,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try lua.run(code, name: "@plugin.lua"), file: file, line: line) { error in
            let message = (error as? LuaError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains(expected), "'\(message)' does not contain '\(expected)'", file: file, line: line)
        }
        // The state still works after the failure.
        XCTAssertEqual(try lua.run("return 1 + 1").first?.number, 2, file: file, line: line)
    }

    func testLibrariesThatReachOutsideAreGone() throws {
        let lua = try sandbox()
        defer { lua.close() }
        assertFails("os.execute('touch /tmp/lopper-escaped')", "sandbox: 'os' is not available in plugins", in: lua)
        assertFails("io.open('/etc/passwd')", "sandbox: 'io' is not available", in: lua)
        assertFails("require('os')", "sandbox: 'require' is not available", in: lua)
        assertFails("package.loadlib('libc.so.6', 'system')", "sandbox: 'package' is not available", in: lua)
        assertFails("debug.sethook()", "sandbox: 'debug' is not available", in: lua)
        assertFails("dofile('/etc/passwd')", "sandbox: 'dofile' is not available", in: lua)
        assertFails("loadfile('/etc/passwd')", "sandbox: 'loadfile' is not available", in: lua)
        assertFails("string.dump(function() end)", "sandbox: string.dump is not available", in: lua)
        assertFails("collectgarbage('stop')", "collectgarbage('stop') is not available", in: lua)
        assertFails("lopper.load('/etc/passwd')", "attempt to call a nil value (field 'load')", in: lua)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/lopper-escaped"))
    }

    func testBinaryChunksAreRefused() throws {
        let lua = try sandbox()
        defer { lua.close() }
        assertFails("load('\\27Lua\\84\\0', 'x', 'b')", "binary chunks are not allowed", in: lua)
        assertFails("load('\\27Lua\\84\\0')", "binary chunks are not allowed", in: lua)
        assertFails("local f, e = load(function() return '\\27Lua' end) error(e)", "attempt to load a binary chunk", in: lua)
        // Text chunks still load, with the sandbox's globals.
        XCTAssertEqual(try lua.run("return load('return 20 + 22')()").first?.number, 42)
        XCTAssertThrowsError(try lua.run("return load('return os')()"))
    }

    func testEndlessLoopHitsTheInstructionLimit() throws {
        let lua = try sandbox(instructions: 1_000_000)
        defer { lua.close() }
        assertFails("while true do end", "sandbox: instruction limit of 1000000 exceeded", in: lua)
        assertFails("local function f() return f() end f()", "instruction limit", in: lua)
        assertFails("local co = coroutine.wrap(function() while true do end end) co()", "instruction limit", in: lua)
        // The budget is per call: a fresh call may use it again.
        XCTAssertNoThrow(try lua.run("for i = 1, 100000 do end"))
        XCTAssertNoThrow(try lua.run("for i = 1, 100000 do end"))
    }

    func testAllocatingUntilMemoryRunsOut() throws {
        let lua = try sandbox()
        defer { lua.close() }
        assertFails("local t = {} while true do t[#t + 1] = string.rep('x', 1000) .. #t end", "not enough memory", in: lua)
        assertFails("local s = string.rep('x', 1 << 30)", "not enough memory", in: lua)
        assertFails("local t = {} while true do t[#t + 1] = lopper.zeros({1024, 1024}) end", "memory", in: lua)
        assertFails("local t = {} local x = lopper.zeros({1024, 1024}) while true do t[#t + 1] = x * 2 end", "not enough memory", in: lua)
        // A Swift function that builds a big Lua value is checked when it returns.
        assertFails("local t = lopper.zeros({1 << 20}):totable()", "not enough memory", in: lua)
        lua.collectGarbage()
        XCTAssertLessThan(lua.memoryInUse, 4 << 20)
        XCTAssertEqual(lua.tensorBytesInUse, 0)
    }

    func testTensorMetatableCannotBeTamperedWith() throws {
        let lua = try sandbox()
        defer { lua.close() }
        try lua.run("t = lopper.ones({4})")
        assertFails("getmetatable(t).__add = function() return 1 end", "attempt to index a string value", in: lua)
        assertFails("setmetatable(t, {})", "table expected, got lopper.Tensor", in: lua)
        assertFails("getmetatable(t).__gc(t)", "attempt to call a nil value (field '__gc')", in: lua)
        assertFails("rawset(getmetatable(t), '__index', {})", "bad argument #1 to 'rawset' (table expected, got string)", in: lua)
        assertFails("setmetatable(_G, nil)", "cannot change a protected metatable", in: lua)
        XCTAssertEqual(try lua.run("return (t + t):sum()").first?.number, 8)
    }

    func testPluginsStillComputeWithTensors() throws {
        let lua = try sandbox()
        defer { lua.close() }
        lua.setGlobal("delta", .tensor(Tensor([0.5, -2, 0.1, 3], shape: [2, 2])))
        let result = try lua.run("""
        local keep = delta:abs():topk_mask(2)
        return delta:where(keep, 0), collectgarbage('count') > 0
        """)
        XCTAssertEqual(result[0].tensor?.floats(), [0, -2, 0, 3])
        XCTAssertEqual(result[1].boolean, true)
    }
}
