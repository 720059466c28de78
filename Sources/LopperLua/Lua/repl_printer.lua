-- `format(...)`: the text the REPL prints for a statement's results.
local write, summary = __repl_write, __repl_summary
local registry = debug.getregistry()
local repl = registry["lopper.repl"] or {}
registry["lopper.repl"] = repl
local type, tostring, rawget, rawlen, next, select = type, tostring, rawget, rawlen, next, select
local getmetatable, sort, concat, format = getmetatable, table.sort, table.concat, string.format
local mathtype = math.type

print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  write(concat(parts, "\t") .. "\n")
end

local MAX_DEPTH, MAX_ITEMS, WIDTH = 3, 40, 78
local keywords = {}
for word in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
  keywords[word] = true
end
repl.keywords = keywords

local function quote(s) return (format("%q", s):gsub("\\\n", "\\n")) end
local function identifier(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] end

local rank = { number = 1, string = 2, boolean = 3 }
local function before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local ra, rb = rank[ta] or 4, rank[tb] or 4
    if ra ~= rb then return ra < rb end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  if ta == "boolean" then return (not a) and b end
  return tostring(a) < tostring(b)
end

local function value(v, depth, ancestors, indent)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t ~= "table" then return summary(v, false) or tostring(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then return tostring(v) end
  if ancestors[v] then return format("<cycle: %p>", v) end
  local length = rawlen(v)
  local keys = {}
  for k in next, v do
    if not (mathtype(k) == "integer" and k >= 1 and k <= length) then keys[#keys + 1] = k end
  end
  local total = length + #keys
  if total == 0 then return "{}" end
  if depth >= MAX_DEPTH then return format("{...%d item%s}", total, total == 1 and "" or "s") end
  sort(keys, before)
  ancestors[v] = true
  local items, inner = {}, indent .. "  "
  for i = 1, length do
    if #items >= MAX_ITEMS then break end
    items[#items + 1] = value(rawget(v, i), depth + 1, ancestors, inner)
  end
  for _, k in ipairs(keys) do
    if #items >= MAX_ITEMS then break end
    local key = identifier(k) and k or "[" .. (type(k) == "string" and quote(k) or tostring(k)) .. "]"
    items[#items + 1] = key .. " = " .. value(rawget(v, k), depth + 1, ancestors, inner)
  end
  ancestors[v] = nil
  if total > #items then items[#items + 1] = format("... (%d more)", total - #items) end
  local line = "{" .. concat(items, ", ") .. "}"
  if #indent + #line <= WIDTH and not line:find("\n") then return line end
  return "{\n" .. inner .. concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
end

local function top(v)
  if type(v) == "string" then return v end
  if type(v) == "table" then return value(v, 0, {}, "") end
  return summary(v, true) or tostring(v)
end

repl.format = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = top((select(i, ...))) end
  return concat(parts, "\t")
end
repl.is_tensor = function(v) return summary(v, false) ~= nil end
