-- Hand-computed: the row 0.1, -0.4, 0.3, -0.2 has |delta| ranks 0, 3, 2, 1; at rate 0.5
-- (keep 0.5) and epsilon 0.2 the keep probabilities are 0.3 + rank * 0.4 / 3:
-- 0.3, 0.7, 0.5667, 0.4333, and a kept entry is delta / p.
local d = lopper.from_table({ { 0.1, -0.4, 0.3, -0.2 } })
local p = { 0.3, 0.7, 0.3 + 2 * 0.4 / 3, 0.3 + 0.4 / 3 }
local values = { 0.1, -0.4, 0.3, -0.2 }

test("each entry is 0 or delta / p, kept with probability p (1000 seeds)", function()
  local seeds, kept = 1000, { 0, 0, 0, 0 }
  for seed = 1, seeds do
    local out = plugin.prune(d, { rate = 0.5, epsilon = 0.2 }, { seed = seed }):totable()
    for i = 1, 4 do
      if out[i] ~= 0 then
        kept[i] = kept[i] + 1
        expect_near(out[i], values[i] / p[i], 1e-6, "kept entry " .. i)
      end
    end
  end
  for i = 1, 4 do
    local se = math.sqrt(p[i] * (1 - p[i]) / seeds)
    expect_near(kept[i] / seeds, p[i], 4.5 * se, "keep frequency of entry " .. i)
  end
end)

-- Ranks are per row, ties to the lower index: row 1 (1, 1) gives p = 0.9 to the first
-- entry, 0.1 to the second; row 2 (-3, 2) gives 0.9 to -3. With epsilon 0.4 and a seed
-- whose mask keeps everything, the values would be 1/0.9, 1/0.1, -3/0.9, 2/0.1.
test("per-row ranks with ties, and the same seed gives the same bytes", function()
  local t = lopper.from_table({ { 1, 1 }, { -3, 2 } })
  local expected = { 1 / 0.9, 1 / 0.1, -3 / 0.9, 2 / 0.1 }
  for seed = 1, 50 do
    local out = plugin.prune(t, { rate = 0.5, epsilon = 0.4 }, { seed = seed })
    local again = plugin.prune(t, { rate = 0.5, epsilon = 0.4 }, { seed = seed })
    expect_near(again, out, 0, "seed " .. seed .. " twice")
    for i, v in ipairs(out:totable()) do
      if v ~= 0 then expect_near(v, expected[i], 1e-5, "entry " .. i) end
    end
  end
end)

test("epsilon too wide for the rate is refused", function()
  local ok, message = pcall(plugin.prune, d, { rate = 0.9, epsilon = 0.2 })
  assert(not ok and message:find("epsilon"), tostring(message))
end)
