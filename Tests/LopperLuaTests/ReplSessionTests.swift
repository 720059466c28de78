import XCTest
import LopperLua

/// The REPL's evaluation core, in process: Lua-interpreter behaviour and printing.
final class ReplSessionTests: XCTestCase {
    final class Transcript {
        var output = ""
        var errors = ""
    }

    func makeSession() throws -> (ReplSession, Transcript) {
        let transcript = Transcript()
        let session = try ReplSession(lua: try LuaState(), output: { transcript.output += $0 },
                                      errorOutput: { transcript.errors += $0 })
        return (session, transcript)
    }

    func testExpressionsPrintWithoutReturn() throws {
        let (session, transcript) = try makeSession()
        XCTAssertEqual(session.feed("x = 1 + 1"), .done)
        XCTAssertEqual(transcript.output, "")
        XCTAssertEqual(session.feed("x"), .done)
        XCTAssertEqual(session.feed("=x * 2"), .done)
        XCTAssertEqual(session.feed("x, 'two', nil, true, 1.5"), .done)
        XCTAssertEqual(session.feed("print('a', 3)"), .done)
        XCTAssertEqual(session.feed("(function() end)()"), .done)
        XCTAssertEqual(transcript.output, "2\n4\n2\ttwo\tnil\ttrue\t1.5\na\t3\n")
        XCTAssertEqual(transcript.errors, "")
    }

    func testIncompleteChunksContinue() throws {
        let (session, transcript) = try makeSession()
        XCTAssertEqual(session.feed("function f(a)"), .incomplete)
        XCTAssertTrue(session.isContinuing)
        XCTAssertEqual(session.feed("  return a * 2"), .incomplete)
        XCTAssertEqual(session.feed("end"), .done)
        XCTAssertFalse(session.isContinuing)
        XCTAssertEqual(session.lastChunk, "function f(a)\n  return a * 2\nend")
        XCTAssertEqual(session.feed("f(21)"), .done)
        XCTAssertEqual(session.feed("s = [[one"), .incomplete)
        XCTAssertEqual(session.feed("two]]"), .done)
        XCTAssertEqual(session.feed("s"), .done)
        XCTAssertEqual(transcript.output, "42\none\ntwo\n")
        // Ctrl-C at the continuation prompt drops the chunk.
        XCTAssertEqual(session.feed("for i = 1, 3 do"), .incomplete)
        session.reset()
        XCTAssertFalse(session.isContinuing)
        // End of input inside a chunk is the syntax error it is.
        XCTAssertEqual(session.feed("x = "), .incomplete)
        XCTAssertEqual(session.finish(), .failed)
        XCTAssertTrue(transcript.errors.contains("stdin:1: unexpected symbol near <eof>"), transcript.errors)
    }

    func testErrorsPrintTracebackAndTheSessionGoesOn() throws {
        let (session, transcript) = try makeSession()
        XCTAssertEqual(session.feed("error('boom')"), .failed)
        XCTAssertTrue(transcript.errors.hasPrefix("stdin:1: boom\nstack traceback:"), transcript.errors)
        XCTAssertEqual(session.feed("x = = 1"), .failed)
        XCTAssertTrue(transcript.errors.contains("stdin:1: unexpected symbol near '='"), transcript.errors)
        XCTAssertEqual(session.feed("nil + 1"), .failed)
        XCTAssertEqual(session.feed("1 + 1"), .done)
        XCTAssertEqual(transcript.output, "2\n")
    }

    func testInterruptStopsTheStatement() throws {
        let (session, transcript) = try makeSession()
        LuaInterrupt.request()
        XCTAssertEqual(session.feed("for i = 1, 100000 do end"), .done, "a stale Ctrl-C does not stop the next statement")
        // A request during the statement (as SIGINT does) stops it, and the next runs.
        session.lua.register("stop") { _ in LuaInterrupt.request(); return 0 }
        XCTAssertEqual(session.feed("n = 0; while true do n = n + 1; if n == 1000 then stop() end end"), .failed)
        XCTAssertTrue(transcript.errors.contains("interrupted"), transcript.errors)
        XCTAssertFalse(LuaInterrupt.isPending)
        XCTAssertEqual(session.feed("n"), .done)
        XCTAssertEqual(transcript.output, "1000\n")
    }

    func testTablesArePrettyPrinted() throws {
        let (session, transcript) = try makeSession()
        session.feed("{3, 2, 1, b = true, a = 'x', [10] = 'ten', ['not id'] = 1}")
        XCTAssertEqual(transcript.output, "{3, 2, 1, [10] = \"ten\", a = \"x\", b = true, [\"not id\"] = 1}\n")
        transcript.output = ""
        session.feed("{a = {b = {c = {d = {}}}}}")
        XCTAssertEqual(transcript.output, "{a = {b = {c = {...1 item}}}}\n")
        transcript.output = ""
        session.feed("t = {name = 'loop'}; t.self = t")
        session.feed("t")
        XCTAssertTrue(transcript.output.hasPrefix("{name = \"loop\", self = <cycle: 0x"), transcript.output)
        transcript.output = ""
        session.feed("big = {} for i = 1, 100 do big[i] = i end")
        session.feed("big")
        XCTAssertTrue(transcript.output.contains("... (60 more)"), transcript.output)
        XCTAssertTrue(transcript.output.hasPrefix("{\n  1,\n  2,"), transcript.output)
        transcript.output = ""
        session.feed("{}, 'plain string', {'quoted\\n'}")
        XCTAssertEqual(transcript.output, "{}\tplain string\t{\"quoted\\n\"}\n")
    }

    func testTensorsPrintSummariesAndSmallOnesInFull() throws {
        let (session, transcript) = try makeSession()
        session.feed("lopper.from_table{{1, 0}, {3, 4}}")
        XCTAssertEqual(transcript.output, "Tensor[2,2] F32 mean=2 std=1.581 min=0 max=4 nonzero=75%\n{{1, 0},\n {3, 4}}\n")
        transcript.output = ""
        session.feed("lopper.zeros{100, 100}")
        XCTAssertEqual(transcript.output, "Tensor[100,100] F32 mean=0 std=0 min=0 max=0 nonzero=0%\n")
        transcript.output = ""
        session.feed("{w = lopper.ones{3}}")
        XCTAssertEqual(transcript.output, "{w = Tensor[3] F32 mean=1 std=0 min=1 max=1 nonzero=100%}\n")
    }

    func testHelpers() throws {
        let (session, transcript) = try makeSession()
        XCTAssertEqual(session.feed("""
        layers({["model.layers.0.q.weight"] = lopper.from_table{1, -1}, ["model.layers.0.k.weight"] = lopper.from_table{2, -2},
                ["model.layers.10.q.weight"] = lopper.from_table{0, 4}, ["model.embed.weight"] = lopper.ones{3}})
        """), .done)
        let lines = transcript.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, transcript.output)
        XCTAssertTrue(lines[0].hasPrefix("layer  tensors  params"), lines[0])
        XCTAssertEqual(lines[1].split(separator: " ").map(String.init), ["0", "2", "4", "0", "1.581", "1.5", "2"])
        XCTAssertEqual(lines[2].split(separator: " ").map(String.init), ["10", "1", "2", "2", "2", "2", "4"])
        XCTAssertEqual(lines[3].split(separator: " ").map(String.init), ["-", "1", "3", "1", "0", "1", "1"])
        XCTAssertEqual(lines[4], "3 layer groups, 4 tensors, 9 parameters")
        // Anything with a names method works (deltas and checkpoints have one).
        transcript.output = ""
        session.feed("d = {data = {['a.3.w'] = lopper.ones{2}}}; function d:names() return {'a.3.w'} end")
        session.feed("setmetatable(d, {__index = function(self, k) return self.data[k] end})")
        transcript.output = ""
        XCTAssertEqual(session.feed("layers(d)"), .done)
        XCTAssertTrue(transcript.output.contains("1 layer groups, 1 tensors, 2 parameters"), transcript.output)
        transcript.output = ""
        XCTAssertEqual(session.feed("hist(lopper.from_table{0, 1, 1, 1}, 2)"), .done)
        XCTAssertTrue(transcript.output.contains("█"), transcript.output)
        XCTAssertTrue(transcript.output.hasSuffix(" 3\n"), transcript.output)
        XCTAssertEqual(session.feed("hist(3)"), .failed)
        XCTAssertTrue(transcript.errors.contains("hist: expected a tensor, got a number value"), transcript.errors)
    }

    func testBindAnnouncesTheValue() throws {
        let (session, _) = try makeSession()
        XCTAssertEqual(try session.bind("m1", to: "lopper.ones(...)", arguments: [.number(2)]),
                       "Tensor[2] F32 mean=1 std=0 min=1 max=1 nonzero=100%\n{1, 1}")
        XCTAssertThrowsError(try session.bind("m2", to: "error('no such checkpoint')"))
    }

    func testHistoryPath() {
        XCTAssertEqual(LuaRepl.historyPath(environment: ["LOPPER_HISTORY": "/tmp/h", "HOME": "/home/u"]), "/tmp/h")
        XCTAssertNil(LuaRepl.historyPath(environment: ["LOPPER_HISTORY": ""]))
        XCTAssertEqual(LuaRepl.historyPath(environment: ["XDG_STATE_HOME": "/s", "HOME": "/home/u"]), "/s/lopper/history")
        XCTAssertEqual(LuaRepl.historyPath(environment: ["HOME": "/home/u"]), "/home/u/.local/state/lopper/history")
    }
}
