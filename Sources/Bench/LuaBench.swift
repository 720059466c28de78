import LopperCore
import LopperLua

/// Cost of crossing into Lua: the same operation (`clone`, a memory-bound copy into a
/// new tensor) called from Swift and from a Lua script,
/// on a large tensor (where the kernel should dominate) and on a 1-element tensor
/// (where only the crossing is left).
func benchLua(elements: Int) {
    do {
        let lua = try LuaState()
        defer { lua.close() }
        let large = Tensor(zeros: [elements]), tiny = Tensor(zeros: [1])
        lua.setGlobal("large", .tensor(large))
        lua.setGlobal("tiny", .tensor(tiny))
        let calls = 20, tinyCalls = 200_000
        let swiftLarge = bestTime { for _ in 0..<calls { _ = large.clone() } } / Double(calls)
        let luaLarge = bestTime { _ = try? lua.run("for i = 1, \(calls) do local y = large:clone() end") } / Double(calls)
        let swiftTiny = bestTime { for _ in 0..<tinyCalls { _ = tiny.clone() } } / Double(tinyCalls)
        let luaTiny = bestTime { _ = try? lua.run("for i = 1, \(tinyCalls) do local y = tiny:clone() end") } / Double(tinyCalls)
        let crossing = max(0, luaTiny - swiftTiny)
        print("lua: clone of \(elements) elements: Swift \(fixed(swiftLarge * 1e3, 8, 3)) ms, from Lua \(fixed(luaLarge * 1e3, 8, 3)) ms")
        print("lua: per-call crossing (1-element clone, Lua minus Swift): \(fixed(crossing * 1e6, 6, 3)) us"
              + " = \(fixed(crossing / swiftLarge * 100, 7, 4)) % of the \(elements)-element kernel")
    } catch {
        print("lua bench failed: \(error)")
    }
}
