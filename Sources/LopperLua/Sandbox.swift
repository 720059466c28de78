/// The plugin sandbox. The C side opens only base, table, string, math, utf8 and
/// coroutine (no io, os, package, debug) and enforces the instruction and memory
/// limits; this file closes the remaining doors with clear messages:
/// `dofile`/`loadfile`/`require` are gone, `load` accepts text only, `string.dump`
/// is removed, and `collectgarbage` keeps only its harmless options.
enum Sandbox {
    static let blockedGlobals = ["os", "io", "package", "debug", "require", "dofile", "loadfile"]

    static func restrict(_ lua: LuaState) throws {
        try lua.run(source, name: "=sandbox")
    }

    private static let source = """
    local error, type, tostring, rawload, rawcollect = error, type, tostring, load, collectgarbage
    local blocked = {}
    for _, name in ipairs({\(blockedGlobals.map { "\"\($0)\"" }.joined(separator: ", "))}) do
      blocked[name] = true
      _G[name] = nil
    end
    load = function(chunk, name, mode, env)
      if mode ~= nil and mode ~= "t" then
        error("sandbox: binary chunks are not allowed in plugins (load mode must be \\"t\\")", 2)
      end
      if type(chunk) == "string" and chunk:byte(1) == 27 then
        error("sandbox: binary chunks are not allowed in plugins", 2)
      end
      if env == nil then return rawload(chunk, name, "t") end
      return rawload(chunk, name, "t", env)
    end
    string.dump = function()
      error("sandbox: string.dump is not available in plugins", 2)
    end
    local allowed = { collect = true, count = true, step = true, isrunning = true }
    collectgarbage = function(option, ...)
      option = option or "collect"
      if not allowed[option] then
        error("sandbox: collectgarbage('" .. tostring(option) .. "') is not available in plugins", 2)
      end
      return rawcollect(option, ...)
    end
    setmetatable(_G, {
      __index = function(_, name)
        if blocked[name] then error("sandbox: '" .. tostring(name) .. "' is not available in plugins", 2) end
        return nil
      end,
      __metatable = "locked",
    })
    """
}
