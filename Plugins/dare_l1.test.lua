-- Hand-computed: delta 1 .. 8 (|D|_1 = 36). Whatever the mask keeps, every kept entry is
-- scaled by 36 / (sum of the kept |d|), the dropped ones are 0, and the L1 norm is 36.
test("kept entries scaled by |D|_1 / |m D|_1", function()
  local d = lopper.from_table({ { 1, -2, 3, -4, 5, -6, 7, -8 } })
  local out, report = plugin.prune(d, { rate = 0.5 }, { seed = 4 })
  local values, kept = out:totable(), 0
  for i, v in ipairs(values) do if v ~= 0 then kept = kept + i end end
  assert(kept > 0 and kept < 36, "the mask kept " .. kept)
  local s = 36 / kept
  local expected = {}
  for i, v in ipairs(values) do expected[i] = v ~= 0 and (i % 2 == 1 and i or -i) * s or 0 end
  expect_near(out, expected, 1e-5)
  expect_near(out:abs():sum(), 36, 1e-4, "L1 norm")
  expect_near(report.rescale, s, 1e-5, "reported rescale")
end)

test("an all-ones delta keeps its sum, whatever the mask", function()
  local d = lopper.full({ 16, 16 }, 1)
  local out = plugin.prune(d, { rate = 0.75 }, { seed = 7 })
  local n = out:count_nonzero()
  expect_near(out:sum(), 256, 1e-3, "all-ones delta keeps its sum")
  assert(n > 0 and n < 256)
end)
