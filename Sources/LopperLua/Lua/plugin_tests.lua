-- The harness of `lopper plugin test` (PluginSelfTest.swift), run in a fresh sandbox
-- before the plugin's tests.lua. It defines test(name, body) and expect_near(actual,
-- expected, tolerance, what), and returns the function that runs the registered cases
-- in order, each under pcall, reporting through the host's report(name, message).
local report = ...
local cases = {}
local type, error, pcall, tostring, ipairs, format, abs = type, error, pcall, tostring, ipairs, string.format, math.abs

function test(name, body)
  if type(name) ~= "string" or type(body) ~= "function" then
    error("test(name, body) takes a name and a function", 2)
  end
  cases[#cases + 1] = { name = name, body = body }
end

-- Numbers, (nested) tables of numbers or tensors, as one flat list.
local function flat(value, into)
  into = into or {}
  if type(value) == "number" then into[#into + 1] = value
  elseif type(value) == "table" then for _, item in ipairs(value) do flat(item, into) end
  elseif type(value) == "userdata" and value.totable then flat(value:totable(), into)
  else error("expect_near: cannot compare a " .. type(value), 3) end
  return into
end

function expect_near(actual, expected, tolerance, what)
  local a, e = flat(actual), flat(expected)
  tolerance = tolerance or 1e-6
  what = what and (what .. ": ") or ""
  if #a ~= #e then error(format("%s%d values, expected %d", what, #a, #e), 2) end
  for i = 1, #a do
    if not (abs(a[i] - e[i]) <= tolerance) then
      error(format("%svalue %d is %.9g, expected %.9g (tolerance %g)", what, i, a[i], e[i], tolerance), 2)
    end
  end
end

return function()
  for _, case in ipairs(cases) do
    local ok, message = pcall(case.body)
    report(case.name, ok and "" or tostring(message))
  end
  return #cases
end
