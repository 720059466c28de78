-- `complete(text)`: the 0-based byte offset where the word being completed
-- starts and the sorted list of replacements for it.
--
-- * `pri`            globals and keywords
-- * `lopper.ze`      fields of a table (and of its `__index` chain)
-- * `t:me`           methods: functions of the value's `__index` table (tensors,
-- checkpoints) or of the table itself
-- * `ft["model.l`    names from the object's `names` method (checkpoints, deltas)
-- or the string keys of a table; a single match is closed `"]`
--
-- Only plain paths (`a.b.c`) are resolved, by indexing inside `pcall`: nothing
-- the user typed is called, except an object's own `names` method.
local repl = debug.getregistry()["lopper.repl"]
local keywords = repl.keywords
local G = _ENV
local rawmeta = debug.getmetatable
local type, pcall, next, ipairs, sort = type, pcall, next, ipairs, table.sort

local function resolve(path)
  local v = G
  for part in path:gmatch("[^.]+") do
    local ok, x = pcall(function() return v[part] end)
    if not ok or x == nil then return nil end
    v = x
  end
  return v
end

-- Identifier keys of `v` and of its __index tables (methods only when asked).
local function fields(v, methods)
  local found, seen = {}, {}
  local x = v
  for _ = 1, 8 do
    if type(x) == "table" then
      for k, item in next, x do
        if type(k) == "string" and k:match("^[%a_][%w_]*$") and (not methods or type(item) == "function") then
          found[k] = true
        end
      end
    end
    local mt = rawmeta(x)
    local index = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(index) ~= "table" or seen[index] then break end
    seen[index] = true
    x = index
  end
  return found
end

local function matching(set, prefix)
  local out = {}
  for name in next, set do
    if name:sub(1, #prefix) == prefix then out[#out + 1] = name end
  end
  sort(out)
  return out
end

local function names_of(v)
  local ok, method = pcall(function() return v.names end)
  if ok and type(method) == "function" then
    local fine, list = pcall(method, v)
    return fine and type(list) == "table" and list or {}
  end
  local list = {}
  if type(v) == "table" then
    for k in next, v do if type(k) == "string" then list[#list + 1] = k end end
  end
  return list
end

repl.complete = function(text)
  -- Inside a string index: ck["model.layers.0.
  local expr, q, partial = text:match("([%a_][%w_%.]*)%[%s*([\"'])([^\"']*)$")
  if expr then
    local start = #text - #partial
    local object = resolve(expr)
    if object == nil then return start, {} end
    local set = {}
    for _, name in ipairs(names_of(object)) do
      if type(name) == "string" then set[name] = true end
    end
    local out = matching(set, partial)
    if #out == 1 then out[1] = out[1] .. q .. "]" end
    return start, out
  end
  -- A field or method: lopper.ze, t:me
  local path, sep, part = text:match("([%a_][%w_%.]*)([%.:])([%w_]*)$")
  if path and not path:find("%.%.") and path:sub(-1) ~= "." then
    local start = #text - #part
    local object = resolve(path)
    if object == nil then return start, {} end
    return start, matching(fields(object, sep == ":"), part)
  end
  -- A global name or keyword.
  local word = text:match("[%a_][%w_]*$") or ""
  local start = #text - #word
  if word == "" and text:match("[%w_%.]$") then return start, {} end
  local set = fields(G, false)
  for k in next, keywords do set[k] = true end
  return start, matching(set, word)
end
