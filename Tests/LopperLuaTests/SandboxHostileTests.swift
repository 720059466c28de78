import Foundation
import XCTest
import LopperCore
import LopperLua
import LopperPrune

/// Hostile plugin code by class (issue 10): each snippet fails with a clear error (or,
/// where the attack is that something runs when it must not, succeeds harmlessly),
/// in bounded time, with the memory limit still in force and the state still working.
final class SandboxHostileTests: XCTestCase {
    static let memoryLimit = 32 << 20
    static let limits = LuaState.Limits(instructions: 2_000_000_000, memory: memoryLimit, tensorMemory: 256 << 20, seconds: 0.5)

    struct Case {
        let code: String
        /// A substring of the error, or nil when the snippet must succeed.
        let error: String?
        var limits = SandboxHostileTests.limits
        init(_ code: String, _ error: String?, limits: LuaState.Limits = SandboxHostileTests.limits) {
            self.code = code
            self.error = error
            self.limits = limits
        }
    }

    private func check(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) throws {
        for (number, test) in cases.enumerated() {
            let lua = try LuaState(sandbox: test.limits)
            defer { lua.close() }
            let label = "case \(number + 1): \(test.code)"
            let start = Date()
            do {
                try lua.run(test.code, name: "@plugin.lua")
                if let expected = test.error { XCTFail("\(label): no error, expected '\(expected)'", file: file, line: line) }
            } catch {
                let message = (error as? LuaError)?.message ?? "\(error)"
                if let expected = test.error {
                    XCTAssertTrue(message.contains(expected), "\(label): '\(message)' lacks '\(expected)'", file: file, line: line)
                } else {
                    XCTFail("\(label): \(message)", file: file, line: line)
                }
            }
            let elapsed = Date().timeIntervalSince(start)
            XCTAssertLessThan(elapsed, test.limits.seconds + 2, "\(label): took \(elapsed) s", file: file, line: line)
            lua.collectGarbage()
            XCTAssertLessThanOrEqual(lua.memoryInUse, test.limits.memory, "\(label): memory over the limit", file: file, line: line)
            // The limit is still enforced, and the state still works.
            XCTAssertThrowsError(try lua.run("local s = string.rep('x', 40 * 2^20)"), "\(label): memory limit lost", file: file, line: line)
            XCTAssertEqual(try lua.run("return ('a1b2'):gsub('%d', '#') .. #lopper.zeros({3}):abs()").first?.string, "a#b#3",
                           "\(label): state broken", file: file, line: line)
        }
    }

    /// A table whose every metamethod raises (or yields), to hand to Swift functions.
    static let evil = """
    local hit = false
    local function boom() hit = true; error("metamethod ran") end
    local evil = setmetatable({}, {__index = boom, __newindex = boom, __len = boom, __tostring = boom, __eq = boom,
                                   __lt = boom, __le = boom, __concat = boom, __call = boom, __pairs = boom})
    local z = lopper.zeros({2, 2})

    """

    // MARK: - Class 2: no Lua error longjmps through a Swift frame

    func testMetamethodsNeverRunInsideSwift() throws {
        let afterwards = "\nassert(not hit, 'a metamethod ran inside Swift'); local s = string.rep('x', 40 * 2^20)"
        let memory = "not enough memory"
        try check([
            Case(Self.evil + "pcall(lopper.darex_q, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.darex_q, evil); pcall(lopper.darex_q, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.fused_dare, z, z, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.fused_mask, z, z, z, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.keep_top, z, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.rescale_factor, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.zeros, evil)" + afterwards, memory),
            Case(Self.evil + "pcall(lopper.bernoulli, evil, 0.5, 1, 'n')" + afterwards, memory),
            Case(Self.evil + "for i = 1, 50 do pcall(lopper.darex_q, evil) end" + afterwards, memory),
            Case(Self.evil + """
            local co = coroutine.wrap(function()
              lopper.darex_q(setmetatable({ delta = z, rate = 0.5 }, {__index = function() coroutine.yield(1) end}))
              return "finished"
            end)
            assert(co() == "finished")
            """ + afterwards, memory),
        ])
    }

    func testProtectedHelpersTurnErrorsAndYieldsIntoThrows() throws {
        var cases: [Case] = []
        for (code, expected) in [
            ("tostr(setmetatable({}, {__tostring = function() error('boom') end}))", "boom"),
            ("coroutine.wrap(function() return tostr(setmetatable({}, {__tostring = function() coroutine.yield() end})) end)()",
             "attempt to yield across a C-call boundary"),
            ("tostr(setmetatable({}, {__tostring = function() while true do end end}))", "time limit of 0.5 seconds exceeded"),
            ("tostr(setmetatable({}, {__tostring = function() return string.rep('x', 40 * 2^20) end}))", "not enough memory"),
            ("assert(tostr(setmetatable({}, {__tostring = function() return 'fine' end})) == 'fine'); error('done')", "done"),
        ] { cases.append(Case(code, expected)) }
        for test in cases {
            let lua = try LuaState(sandbox: Self.limits)
            defer { lua.close() }
            lua.register("tostr") { stack in stack.push(try stack.protectedString(1)); return 1 }
            XCTAssertThrowsError(try lua.run(test.code, name: "@plugin.lua"), test.code) { error in
                XCTAssertTrue("\(error)".contains(test.error!), "\(test.code): \(error)")
            }
            XCTAssertThrowsError(try lua.run("local s = string.rep('x', 40 * 2^20)"), "memory limit lost after \(test.code)")
            XCTAssertEqual(try lua.run("return 2 + 2").first?.number, 4)
        }
    }

    // MARK: - Class 3: finalizers cannot escape the memory limit

    func testFinalizersAreRefused() throws {
        let refused = "sandbox: __gc metamethods (finalizers) are not allowed in plugins"
        try check([
            Case("setmetatable({}, {__gc = function() hold = string.rep('x', 300 * 2^20) end})", refused),
            Case("setmetatable({}, {__gc = function() while true do end end}); collectgarbage()", refused),
            Case("setmetatable({}, {__gc = false})", refused),
            Case("for i = 1, 100 do pcall(setmetatable, {}, {__gc = function() hold = string.rep('x', 2^20) end}) end; collectgarbage()"
                 + "; assert(hold == nil, 'a finalizer ran')", nil),
            // __gc added after setmetatable does not mark the object (Lua 5.4 rule).
            Case("local mt = {}; local t = setmetatable({}, mt); mt.__gc = function() ran = true end; t = nil;"
                 + " collectgarbage(); collectgarbage(); assert(not ran, 'a finalizer ran')", nil),
            Case("local t = setmetatable({}, {__index = function() return 1 end}); return t.x + 1", nil),
        ])
        // The collection the host runs after each tensor: with the limit in force.
        let lua = try LuaState(sandbox: Self.limits)
        defer { lua.close() }
        try lua.run("for i = 1, 20 do local t = {string.rep('y', 2^20)} end")
        lua.collectGarbage()
        XCTAssertLessThan(lua.memoryInUse, 4 << 20)
    }

    // MARK: - Class 4: the time limit bounds C functions and kernels, and no handler swallows it

    func testTimeLimitStopsEverything() throws {
        let time = "time limit of 0.5 seconds exceeded"
        try check([
            Case("string.rep('a', 5000):find('.-.-.-.-.-b')", time),
            Case("string.rep('a', 5000):match('(.-)(.-)(.-)(.-)x')", time),
            Case("string.rep('a', 5000):gsub('.-.-.-.-b', '')", time),
            Case("for m in string.rep('a', 5000):gmatch('.-.-.-.-b') do end", time),
            Case("local s = string.rep('a', 2^23); s:find(string.rep('a', 2^21) .. 'b', 1, true)", time),
            Case("local t = lopper.zeros({2048, 2048}); for i = 1, 1e6 do t:abs() end", time),
            Case("xpcall(function() while true do end end, function() while true do end end)", time),
            Case("while true do xpcall(function() while true do end end, function(e) return e end) end", time),
            Case("while true do pcall(function() while true do end end) end", time),
            Case("while true do pcall(string.find, string.rep('a', 5000), '.-.-.-.-.-b') end", time),
            Case("while true do coroutine.resume(coroutine.create(function() while true do end end)) end", time),
            Case("while true do pcall(coroutine.wrap(function() while true do end end)) end", time),
            Case("""
            while true do
              local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() while true do end end}); coroutine.yield() end)
              coroutine.resume(co); coroutine.close(co)
            end
            """, time),
            Case("error(setmetatable({}, {__tostring = function() while true do end end}))", time),
            Case("local s = string.rep('x', 2^22); while true do local t = s .. s end", time),
            Case("local s = string.rep('x', 2^23); while true do utf8.len(s) end", time),
            Case("table.move({}, 1, math.maxinteger - 1, 1)", time),
            Case("table.insert(setmetatable({}, {__len = function() return 2^40 end}), 1, 1)", "the sandbox allows"),
            Case("while true do end", "instruction limit of 1000000 exceeded",
                 limits: .init(instructions: 1_000_000, memory: Self.memoryLimit, tensorMemory: 1 << 20, seconds: 5)),
        ])
    }

    func testPatternFunctionsKeepLuaSemantics() throws {
        let lua = try LuaState(sandbox: Self.limits)
        defer { lua.close() }
        // The expected text is what Lua 5.4.4's own string library prints for this script.
        let results = try lua.run("""
        local out = {}
        local function add(...) for i = 1, select('#', ...) do out[#out + 1] = tostring((select(i, ...))) end end
        add(("hello world"):find("o w")); add(("hello world"):find("o", 6)); add(("a.b"):find(".", 1, true))
        add(("key = value"):match("^(%w+)%s*=%s*(%w+)$")); add(("  x"):match("()x")); add(("[[a]]"):match("%b[]"))
        add(("THE (quick) fox"):find("%f[%a]%a+", 5)); add(("abcabc"):match("(a)(b)c%1%2"))
        for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do add(k, v) end
        add(("abc"):gsub("", "-")); add(("hello world"):gsub("o", {o = "0"})); add(("abc"):gsub("%w", "%0%0"))
        add(("x y z"):gsub("%s", function() return nil end)); add(("abc"):gsub("b", "%%")); add(("abc"):find("b", -1))
        add(("abc"):match(".-$")); add(("aaa"):gsub("^a", "b")); add(string.find("a+b", "+", 1, true)); add(("x"):find("", 10))
        for w in ("one two"):gmatch("%a+", 4) do add(w) end
        add(pcall(string.find, "a", "[a")); add(pcall(string.gsub, "a", "a", "%2")); add(pcall(string.match, "a", "(()"))
        add(("abab"):gsub("(a)(b)", "%2%1")); add(("x=1"):gsub("(%w)=(%w)", "%0 %1 %2")); add(string.gsub("abc", "(b)", {b = false}))
        add(pcall(string.gsub, "abc", "b", {b = {}})); add(("a,b,,c"):gsub(",,", ",")); add(string.find("", "")); add(string.find("abc", "c$"))
        add(string.match("2024-01-02", "(%d+)-(%d+)-(%d+)")); add(string.gsub("hello", "l+", "L")); add(string.match("  trim  ", "^%s*(.-)%s*$"))
        add(pcall(string.rep)); add(string.find("a\0b", "\0", 1, true)); add(string.find("a\0b", "%z")); add(pcall(string.gsub, "abc", ".", {a = 1, b = true}))
        add(pcall(string.gsub, "x", "x", "%")); add(string.match("f(a(b)c)", "%b()")); add(pcall(string.match, "x", "%f"))
        add(string.gsub("abc", "%w", "%1")); add(string.find("aXb", "%u")); add(string.match("[]", "[]]")); add(string.match("a-b", "[a%-]+"))
        return table.concat(out, " ")
        """)
        XCTAssertEqual(results.first?.string, """
        5 7 8 8 2 2 key value 3 [[a]] 6 10 a b a 1 b 2 -a-b-c- 4 hell0 w0rld 2 aabbcc 3 x y z 2 a%c 1 nil abc baa 1 2 2 nil two false malformed pattern (missing ']') false invalid capture index %2 false unfinished capture baba 2 x=1 x 1 1 abc 1 false invalid replacement value (a table) a,b,c 1 1 0 3 3 2024 01 02 heLo 1 trim false bad argument #1 to 'string.rep' (string expected, got no value) 2 2 2 2 false invalid replacement value (a boolean) false invalid use of '%' in replacement string (a(b)c) false missing '[' after '%f' in pattern abc 3 2 2 ] a-
        """)
    }

    // MARK: - Lua bits of classes 9 and 10: stale ctx, limit error location

    private func pluginSource(_ body: String) -> String {
        "return { name = 'hostile', version = '1', api = 2, summary = 's', \(body) }"
    }

    private func job(_ name: String) throws -> PruneJob {
        let zeros = try Tensor(zeros: [4, 4], dtype: .f32)
        return PruneJob(name: name, layerCount: 2, base: zeros, finetuned: zeros, parameters: ["rate": .number(0.5)],
                        seed: 1, output: .delta, outputDType: .f32)
    }

    func testCtxKeptFromAnotherTensorIsRefused() throws {
        for (hook, expected) in [
            ("saved.report('x', 1)", "ctx.report: the ctx of tensor \"model.layers.0.mlp.up_proj.weight\" was used while pruning \"model.layers.1.mlp.up_proj.weight\""),
            ("saved.note('x')", "ctx.note: the ctx of tensor \"model.layers.0.mlp.up_proj.weight\""),
        ] {
            let source = pluginSource("prune = function(d, ctx) if saved then \(hook) end saved = ctx; ctx.report('ok', 1); return d end")
            let plugin = try Plugin(source: source, chunkName: "@hostile.lua", path: "hostile.lua", limits: Self.limits)
            XCTAssertNoThrow(try plugin.prune(try job("model.layers.0.mlp.up_proj.weight")))
            XCTAssertThrowsError(try plugin.prune(try job("model.layers.1.mlp.up_proj.weight")), hook) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(hook): \(error)")
            }
        }
    }

    func testLimitErrorsPointAtThePluginLine() throws {
        for (body, expected) in [
            ("prune = function(d, ctx)\nwhile true do end\nend", "hostile.lua:2: sandbox: instruction limit"),
            ("prune = function(d, ctx)\nlocal x = 0\nwhile true do x = x + 1 end\nend", "hostile.lua:3: sandbox: instruction limit"),
            ("prune = function(d, ctx)\nwhile true do pcall(error) end\nend", "hostile.lua:2: sandbox: instruction limit"),
        ] {
            let limits = LuaState.Limits(instructions: 1_000_000, memory: Self.memoryLimit, tensorMemory: 1 << 20, seconds: 5)
            let plugin = try Plugin(source: pluginSource(body.replacingOccurrences(of: "\n", with: "\n")), chunkName: "@hostile.lua",
                                    path: "hostile.lua", limits: limits)
            XCTAssertThrowsError(try plugin.prune(try job("w"))) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
                XCTAssertFalse("\(error)".contains("lopper."), "\(error)")
            }
        }
    }

    func testLimitsComeFromTheEnvironmentDefaults() {
        let limits = LuaState.Limits()
        XCTAssertGreaterThan(limits.seconds, 0)
        XCTAssertGreaterThan(limits.memory, 0)
    }
}
