-- The plugin sandbox, run once in every sandboxed state (see Sandbox.swift).
local error, type, tostring, rawload, rawcollect = error, type, tostring, load, collectgarbage
local rawget, rawsetmetatable = rawget, setmetatable
local blocked = {}
for _, name in ipairs({ "os", "io", "package", "debug", "require", "dofile", "loadfile" }) do
  blocked[name] = true
  _G[name] = nil
end
load = function(chunk, name, mode, env)
  if mode ~= nil and mode ~= "t" then
    error("sandbox: binary chunks are not allowed in plugins (load mode must be \"t\")", 2)
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
-- Lua marks an object for finalization only when setmetatable sees a __gc field.
setmetatable = function(object, metatable)
  if type(metatable) == "table" and rawget(metatable, "__gc") ~= nil then
    error("sandbox: __gc metamethods (finalizers) are not allowed in plugins", 2)
  end
  return rawsetmetatable(object, metatable)
end
-- table.move, insert and remove loop in C over a range or length the script
-- chooses (a __len of 2^60): move in bounded chunks, refuse absurd lengths.
local rawmove, rawinsert, rawremove = table.move, table.insert, table.remove
local tointeger, maxinteger, min = math.tointeger, math.maxinteger, math.min
local chunk, longest = 4096, 1 << 24
table.move = function(a1, f, e, t, a2)
  local first, last, to = tointeger(f), tointeger(e), tointeger(t)
  if not (first and last and to) or last < first or last - first < chunk then return rawmove(a1, f, e, t, a2) end
  if not (first > 0 or last < maxinteger + first) then error("bad argument #3 to 'move' (too many elements to move)", 2) end
  local n = last - first + 1
  if to > maxinteger - n + 1 then error("bad argument #4 to 'move' (destination wrap around)", 2) end
  if a2 == nil then a2 = a1 end
  if to > last or to <= first or a1 ~= a2 then
    for offset = 0, n - 1, chunk do rawmove(a1, first + offset, first + min(offset + chunk, n) - 1, to + offset, a2) end
  else  -- overlapping, to the right: from the end, as Lua does
    for offset = (n - 1) // chunk * chunk, 0, -chunk do
      rawmove(a1, first + offset, first + min(offset + chunk, n) - 1, to + offset, a2)
    end
  end
  return a2
end
local function check_length(t, name)
  if type(t) ~= "table" then return end
  local n = #t
  if tointeger(n) and n > longest then
    error("sandbox: table." .. name .. " on a table of length " .. tostring(n) .. " (the sandbox allows " .. longest .. ")", 3)
  end
end
table.insert = function(t, ...) check_length(t, "insert") return rawinsert(t, ...) end
table.remove = function(t, ...) check_length(t, "remove") return rawremove(t, ...) end
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
