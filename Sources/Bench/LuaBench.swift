import LopperCore
import LopperLua

/// Cost of crossing into Lua: the same operation (`add`, a memory-bound elementwise
/// kernel reading two tensors and writing a new one) called from Swift and from a Lua
/// script, on large tensors (where the kernel should dominate) and on 1-element
/// tensors (where only the crossing is left).
func benchLua(elements: Int) {
    do {
        let lua = try LuaState()
        defer { lua.close() }
        let a = try Tensor(zeros: [elements]), b = try Tensor(zeros: [elements])
        let tinyA = try Tensor(zeros: [1]), tinyB = try Tensor(zeros: [1])
        lua.setGlobal("a", .tensor(a))
        lua.setGlobal("b", .tensor(b))
        lua.setGlobal("ta", .tensor(tinyA))
        lua.setGlobal("tb", .tensor(tinyB))
        let calls = 20, tinyCalls = 200_000
        let swiftLarge = bestTime { for _ in 0..<calls { _ = try? add(a, b) } } / Double(calls)
        let luaLarge = bestTime { _ = try? lua.run("for i = 1, \(calls) do local y = a + b end") } / Double(calls)
        let swiftTiny = bestTime { for _ in 0..<tinyCalls { _ = try? add(tinyA, tinyB) } } / Double(tinyCalls)
        let luaTiny = bestTime { _ = try? lua.run("for i = 1, \(tinyCalls) do local y = ta + tb end") } / Double(tinyCalls)
        let crossing = max(0, luaTiny - swiftTiny)
        print("lua: add of 2 x \(elements) elements: Swift \(fixed(swiftLarge * 1e3, 8, 3)) ms, from Lua \(fixed(luaLarge * 1e3, 8, 3)) ms")
        print("lua: per-call crossing (1-element add, Lua minus Swift): \(fixed(crossing * 1e6, 6, 3)) us"
              + " = \(fixed(crossing / swiftLarge * 100, 7, 4)) % of the \(elements)-element kernel")
    } catch {
        print("lua bench failed: \(error)")
    }
}
