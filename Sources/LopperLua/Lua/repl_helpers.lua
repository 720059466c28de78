-- The REPL's global helpers (documented in `LuaDocs.repl`).
--
-- `layers(d)` groups the tensors of a delta by layer index (the first all-digit
-- component of the name: `model.layers.12.mlp.up_proj.weight` is layer 12; names
-- without one are grouped as `-`) and prints count, parameters, mean, std,
-- mean |x| and max |x| per layer, from one `stats` pass and two norms per tensor.
local repl = debug.getregistry()["lopper.repl"]
local document, is_tensor = __repl_document, repl.is_tensor
local format, concat, sort, sqrt, max, huge = string.format, table.concat, table.sort, math.sqrt, math.max, math.huge

local function count(n)
  if n < 1e4 then return format("%d", n) end
  if n < 1e6 then return format("%.1fK", n / 1e3) end
  if n < 1e9 then return format("%.1fM", n / 1e6) end
  return format("%.2fB", n / 1e9)
end
local function number(x)
  if x ~= x then return "nan" end
  return format("%.4g", x)
end

local function names_of(d)
  local ok, method = pcall(function() return d.names end)
  if ok and type(method) == "function" then return method(d) end
  if type(d) ~= "table" then
    error("layers: expected a delta, a checkpoint or a table of tensors, got a " .. type(d) .. " value", 3)
  end
  local names = {}
  for k in pairs(d) do if type(k) == "string" then names[#names + 1] = k end end
  sort(names)
  return names
end

function layers(d)
  local names = names_of(d)
  local groups, order = {}, {}
  for _, name in ipairs(names) do
    local t = d[name]
    if is_tensor(t) then
      local layer = "-"
      for part in name:gmatch("[^.]+") do
        if part:match("^%d+$") then layer = math.tointeger(tonumber(part)) or part; break end
      end
      local g = groups[layer]
      if not g then
        g = { tensors = 0, params = 0, n = 0, sum = 0, squares = 0, abs = 0, absmax = 0 }
        groups[layer] = g
        order[#order + 1] = layer
      end
      local s = t:stats()
      local valid = s.count - s.nan
      g.tensors = g.tensors + 1
      g.params = g.params + s.count
      if valid > 0 then
        g.n = g.n + valid
        g.sum = g.sum + s.mean * valid
        g.squares = g.squares + (s.std * s.std + s.mean * s.mean) * valid
        g.abs = g.abs + t:norm(1)
        g.absmax = max(g.absmax, t:norm("inf"))
      end
    end
  end
  sort(order, function(a, b)
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  local header = { "layer", "tensors", "params", "mean", "std", "mean|x|", "max|x|" }
  local rows = { header }
  local total = { tensors = 0, params = 0 }
  for _, layer in ipairs(order) do
    local g = groups[layer]
    local mean = g.n > 0 and g.sum / g.n or 0 / 0
    local var = g.n > 0 and max(0, g.squares / g.n - mean * mean) or 0 / 0
    rows[#rows + 1] = { tostring(layer), tostring(g.tensors), count(g.params), number(mean), number(sqrt(var)),
                        number(g.n > 0 and g.abs / g.n or 0 / 0), number(g.absmax) }
    total.tensors = total.tensors + g.tensors
    total.params = total.params + g.params
  end
  if #order == 0 then print("layers: no tensors"); return end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do widths[i] = max(widths[i] or 0, utf8.len(cell) or #cell) end
  end
  local lines = {}
  for r, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      local pad = (" "):rep(widths[i] - (utf8.len(cell) or #cell))
      cells[i] = i == 1 and cell .. pad or pad .. cell
    end
    lines[#lines + 1] = concat(cells, "  ")
  end
  lines[#lines + 1] = format("%d layer groups, %d tensors, %s parameters", #order, total.tensors, count(total.params))
  print(concat(lines, "\n"))
end

function hist(t, bins)
  if not is_tensor(t) then
    error("hist: expected a tensor, got a " .. type(t) .. " value", 2)
  end
  print(t:hist(bins))
end

document(layers, "layers")
document(hist, "hist")
