import CLua
import CLuaShim
import LopperCore

/// The Lua side of the REPL: the value printer, the completer and the helpers
/// `layers` and `hist`, installed into the session's state. The printer and the
/// completer live in the registry (`lopper.repl`), out of the user's way.
enum ReplPrelude {
    static let registryKey = "lopper.repl"

    static func install(in lua: LuaState, write: @escaping (String) -> Void) throws {
        lua.register("__repl_write") { stack in
            write(try stack.string(1, "write"))
            return 0
        }
        lua.register("__repl_summary") { stack in
            guard let tensor = TensorUserdata.tensor(at: 1, on: stack) else { stack.pushNil(); return 1 }
            stack.push(ReplFormatting.summary(tensor, full: stack.boolean(2)))
            return 1
        }
        lua.register("__repl_document") { stack in
            LuaDocs.remember(functionAt: 1, as: try stack.string(2, "document"), on: stack)
            return 0
        }
        try lua.run(EmbeddedLua.replPrinter, name: "=repl/printer")
        try lua.run(EmbeddedLua.replCompleter, name: "=repl/completer")
        try lua.run(EmbeddedLua.replHelpers, name: "=repl/helpers")
        try lua.run("__repl_write, __repl_summary, __repl_document = nil, nil, nil", name: "=repl")
    }

    /// Pushes the registry function `name` (`format`, `complete`); false if missing.
    static func pushFunction(_ name: String, on stack: LuaStack) -> Bool {
        lua_getfield(stack.state, lopper_registryindex(), registryKey)
        guard stack.type(-1) == LUA_TTABLE else { stack.pop(); return false }
        lua_getfield(stack.state, -1, name)
        lopper_remove(stack.state, -2)
        guard stack.type(-1) == LUA_TFUNCTION else { stack.pop(); return false }
        return true
    }
}
