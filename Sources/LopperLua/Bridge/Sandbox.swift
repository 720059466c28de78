/// The plugin sandbox. The C side opens only base, table, string, math, utf8 and
/// coroutine (no io, os, package, debug) and enforces the instruction and memory
/// limits; Lua/sandbox.lua closes the remaining doors with clear messages:
/// `dofile`/`loadfile`/`require` are gone, `load` accepts text only, `string.dump`
/// is removed, `collectgarbage` keeps only its harmless options, and `setmetatable`
/// refuses `__gc`: finalizers run with hooks off (no instruction or time limit, no
/// Ctrl-C) and at any allocation, so plugins cannot have them at all.
enum Sandbox {
    static func restrict(_ lua: LuaState) throws {
        try lua.run(EmbeddedLua.sandbox, name: "=lopper.sandbox")
    }
}
