import XCTest
import LopperCore
import LopperLua

/// Tensor arithmetic through Lua checked against values computed here in Swift, and
/// the lifetime of tensors held by Lua.
final class TensorUserdataTests: XCTestCase {
    /// Deterministic values in [-2, 2) from a 64-bit LCG (independent of the kernels).
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
    }

    private func assertClose(_ actual: [Float], _ expected: [Float], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        for (index, (a, e)) in zip(actual, expected).enumerated() where Swift.abs(a - e) > 1e-5 * max(1, Swift.abs(e)) {
            XCTFail("\(what)[\(index)] = \(a), expected \(e)", file: file, line: line)
            return
        }
    }

    func testArithmeticMatchesSwiftReference() throws {
        let count = 3 * 1007  // odd size: exercises the kernel tails
        let x = values(count, seed: 1), y = values(count, seed: 2).map { $0 == 0 ? 0.5 : $0 }
        let lua = try LuaState()
        defer { lua.close() }
        lua.setGlobal("x", .tensor(Tensor(x, shape: [3, 1007])))
        lua.setGlobal("y", .tensor(Tensor(y, shape: [3, 1007])))
        let results = try lua.run("return x + y, x - y, x * y, x / y, -x, x * 0.5 + 3, 2 - y, x:abs(), (x - y):sign()")
        let tensors = try results.map { try XCTUnwrap($0.tensor) }
        XCTAssertEqual(tensors[0].shape, [3, 1007])
        assertClose(tensors[0].floats(), zip(x, y).map { $0 + $1 }, "x + y")
        assertClose(tensors[1].floats(), zip(x, y).map { $0 - $1 }, "x - y")
        assertClose(tensors[2].floats(), zip(x, y).map { $0 * $1 }, "x * y")
        assertClose(tensors[3].floats(), zip(x, y).map { $0 / $1 }, "x / y")
        assertClose(tensors[4].floats(), x.map { -$0 }, "-x")
        assertClose(tensors[5].floats(), x.map { $0 * 0.5 + 3 }, "x * 0.5 + 3")
        assertClose(tensors[6].floats(), y.map { 2 - $0 }, "2 - y")
        assertClose(tensors[7].floats(), x.map { Swift.abs($0) }, "abs")
        assertClose(tensors[8].floats(), zip(x, y).map { $0 - $1 > 0 ? 1 : ($0 - $1 < 0 ? -1 : 0) }, "sign")
    }

    func testReductionsMatchSwiftReference() throws {
        let x = values(10_001, seed: 3)
        let lua = try LuaState()
        defer { lua.close() }
        lua.setGlobal("x", .tensor(Tensor(x, dtype: .f32)))
        let r = try lua.run("return x:sum(), x:mean(), x:var(), x:norm(), x:norm(1), x:min(), x:max(), x:kth(10)").map { $0.number ?? .nan }
        let doubles = x.map(Double.init)
        let sum = doubles.reduce(0, +), mean = sum / Double(x.count)
        let variance = doubles.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
        XCTAssertEqual(r[0], sum, accuracy: 1e-6 * Double(x.count))
        XCTAssertEqual(r[1], mean, accuracy: 1e-6 * max(1, Swift.abs(mean)))
        XCTAssertEqual(r[2], variance, accuracy: 1e-6)
        XCTAssertEqual(r[3], doubles.map { $0 * $0 }.reduce(0, +).squareRoot(), accuracy: 1e-4)
        XCTAssertEqual(r[4], doubles.map(Swift.abs).reduce(0, +), accuracy: 1e-3)
        XCTAssertEqual(r[5], Double(x.min()!))
        XCTAssertEqual(r[6], Double(x.max()!))
        XCTAssertEqual(r[7], Double(x.sorted(by: >)[9]))
    }

    func testTensorsSharedWithSwiftAreNotCopied() throws {
        let tensor = Tensor([1, 2, 3])
        let lua = try LuaState()
        defer { lua.close() }
        lua.setGlobal("t", .tensor(tensor))
        let back = try XCTUnwrap(try lua.run("return t").first?.tensor)
        XCTAssertTrue(back === tensor)
    }

    func testNoTensorOutlivesTheState() throws {
        let before = Storage.liveHeapCount
        do {
            let lua = try LuaState()
            try lua.run("""
            kept = {}
            for i = 1, 50 do
              local t = lopper.ones({64}) * i + lopper.zeros({64})
              if i % 5 == 0 then kept[#kept + 1] = t end
            end
            mask = kept[1]:gt(10)
            """)
            lua.collectGarbage()
            // Only what globals reference survives a collection: 10 kept tensors and a mask.
            XCTAssertEqual(Storage.liveHeapCount - before, 11)
            lua.close()
        }
        XCTAssertEqual(Storage.liveHeapCount, before)
    }

    func testCollectorSeesTensorMemory() throws {
        // 200 temporaries of 4 MiB: Lua must collect them as it goes (it cannot see
        // their memory, so the bridge tells the collector), not hold 800 MiB.
        let lua = try LuaState()
        defer { lua.close() }
        let base = Storage.liveHeapCount
        var peak = 0
        lua.register("live") { stack in
            peak = max(peak, Storage.liveHeapCount - base)
            return 0
        }
        try lua.run("for i = 1, 200 do local t = lopper.zeros({1024, 1024}) + i; live() end")
        XCTAssertLessThan(peak, 40, "tensors were not collected while the loop ran")
    }

    func testTostringAndHelp() throws {
        let lua = try LuaState()
        defer { lua.close() }
        let text = try lua.run("return tostring(lopper.from_table({{1, 2.5}, {-3, 4}}, 'BF16'))").first?.string
        XCTAssertEqual(text, "Tensor[2,2] BF16 {1, 2.5, -3, 4}")
        XCTAssertNoThrow(try lua.run("help() help(lopper.load) help('sum') help(lopper.zeros({1}))"))
        XCTAssertThrowsError(try lua.run("help('no_such_thing')"))
    }
}
