-- Elementwise arithmetic against hand-computed values.
local function same(t, expected, what)
  local values = t:totable()
  assert(#values == #expected, what .. ": " .. #values .. " values, expected " .. #expected)
  for i = 1, #expected do
    assert(math.abs(values[i] - expected[i]) <= 1e-6 * math.max(1, math.abs(expected[i])),
           what .. "[" .. i .. "] = " .. values[i] .. ", expected " .. expected[i])
  end
end

local a = lopper.from_table({{1, -2, 3}, {4, 5, -6}})
local b = lopper.from_table({{0.5, 2, -1}, {8, -5, 2}})
same(a + b, {1.5, 0, 2, 12, 0, -4}, "a + b")
same(a - b, {0.5, -4, 4, -4, 10, -8}, "a - b")
same(a * b, {0.5, -4, -3, 32, -25, -12}, "a * b")
same(a / b, {2, -1, -3, 0.5, -1, -3}, "a / b")
same(-a, {-1, 2, -3, -4, -5, 6}, "-a")
same(a + 1, {2, -1, 4, 5, 6, -5}, "a + 1")
same(1 + a, {2, -1, 4, 5, 6, -5}, "1 + a")
same(a - 1, {0, -3, 2, 3, 4, -7}, "a - 1")
same(10 - a, {9, 12, 7, 6, 5, 16}, "10 - a")
same(a * 2, {2, -4, 6, 8, 10, -12}, "a * 2")
same(3 * a, {3, -6, 9, 12, 15, -18}, "3 * a")
same(a / 2, {0.5, -1, 1.5, 2, 2.5, -3}, "a / 2")
same(12 / a, {12, -6, 4, 3, 2.4, -2}, "12 / a")
same(a:abs(), {1, 2, 3, 4, 5, 6}, "abs")
same(a:sign(), {1, -1, 1, 1, 1, -1}, "sign")
same((a * b + a) / 2, {0.75, -3, 0, 18, -10, -9}, "composite")

assert(#a == 6, "#a")
assert(a:numel() == 6, "numel")
local shape = a:shape()
assert(#shape == 2 and shape[1] == 2 and shape[2] == 3, "shape")
assert(a:dtype() == "F32", "dtype")

-- Results are new tensors: the inputs are unchanged.
same(a, {1, -2, 3, 4, 5, -6}, "a unchanged")

-- Conversion rounds to the target dtype: 1/3 in BF16 is 0.333984375.
local third = lopper.full({2}, 1 / 3):to("BF16")
assert(third:dtype() == "BF16", "to BF16")
same(third, {0.333984375, 0.333984375}, "BF16 rounding")
same(third:to("F32"), {0.333984375, 0.333984375}, "back to F32")
