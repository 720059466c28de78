import XCTest
import LopperLua

/// Tab completion of the REPL, called directly (the terminal test drives it by keys).
final class ReplCompletionTests: XCTestCase {
    var session: ReplSession!

    override func setUpWithError() throws {
        session = try ReplSession(lua: try LuaState(), output: { _ in }, errorOutput: { _ in })
    }

    override func tearDown() { session = nil }

    func complete(_ text: String) -> (String, [String]) {
        let result = session.completions(for: text)
        let kept = String(decoding: Array(text.utf8)[..<result.start], as: UTF8.self)
        return (kept, result.candidates)
    }

    func testGlobalsAndKeywords() {
        XCTAssertEqual(complete("pri").1, ["print"])
        XCTAssertEqual(complete("x = pri").0, "x = ")
        XCTAssertEqual(complete("x = pri").1, ["print"])
        XCTAssertEqual(complete("lop").1, ["lopper"])
        XCTAssertEqual(complete("whi").1, ["while"])
        XCTAssertTrue(complete("").1.contains("layers"))
        XCTAssertEqual(complete("1").1, [], "no names after a number")
        session.feed("my_value = 1")
        XCTAssertEqual(complete("print(my_v").1, ["my_value"])
    }

    func testFieldsOfTables() {
        XCTAssertEqual(complete("lopper.ze").0, "lopper.")
        XCTAssertEqual(complete("lopper.ze").1, ["zeros"])
        XCTAssertEqual(complete("lopper.f").1, ["from_table", "full", "fused_dare", "fused_mask"])
        XCTAssertEqual(complete("string.up").1, ["upper"])
        session.feed("config = {model = {layers = 24, heads = 16}}")
        XCTAssertEqual(complete("config.model.").1, ["heads", "layers"])
        XCTAssertEqual(complete("nothing.here.").1, [])
    }

    func testMethodsOfTensorsAndObjects() {
        session.feed("t = lopper.ones{2, 2}")
        XCTAssertEqual(complete("t:me").0, "t:")
        XCTAssertEqual(complete("t:me").1, ["mean"])
        XCTAssertEqual(complete("x = t:row_").1, ["row_norms", "row_sums"])
        XCTAssertTrue(complete("t:").1.contains("hist"))
        session.feed("obj = setmetatable({}, {__index = {run = function() end, size = 3}})")
        XCTAssertEqual(complete("obj:").1, ["run"], "only functions after ':'")
        XCTAssertEqual(complete("obj.").1, ["run", "size"])
    }

    func testNamesInsideStringIndex() {
        session.feed("""
        ft = {names = function(self)
          return {"model.layers.0.mlp.up.weight", "model.layers.0.attn.q.weight", "model.layers.1.mlp.up.weight", "lm_head.weight"}
        end}
        """)
        let (kept, candidates) = complete("ft[\"model.layers.0.")
        XCTAssertEqual(kept, "ft[\"")
        XCTAssertEqual(candidates, ["model.layers.0.attn.q.weight", "model.layers.0.mlp.up.weight"])
        XCTAssertEqual(complete("x = ft['lm").1, ["lm_head.weight']"], "a single match is closed")
        XCTAssertEqual(complete("ft[\"nothing").1, [])
        // Plain tables complete their string keys.
        session.feed("tensors = {['a.weight'] = 1, ['a.bias'] = 2, ['b'] = 3}")
        XCTAssertEqual(complete("tensors[\"a.").1, ["a.bias", "a.weight"])
        // An object whose names method fails completes nothing and raises nothing.
        session.feed("bad = {names = function() error('no') end}")
        XCTAssertEqual(complete("bad[\"").1, [])
    }
}
