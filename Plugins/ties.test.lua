-- Hand-computed on one tensor (its own model): |delta| = 0.5, 3, 1, 2, 4 at rate 0.6 keeps
-- round(0.4 * 5) = 2 entries, 3 and 4, with their signs and unscaled. The model-wide case,
-- where tensors share one threshold, is in Tests/PluginTests/LiteratureMethodTests.swift.
test("keeps the largest |delta|, unscaled", function()
  local d = lopper.from_table({ { 0.5, -3, 1, 2, -4 } })
  local out, report = plugin.prune(d, { rate = 0.6 })
  expect_near(out, { 0, -3, 0, 0, -4 })
  expect_near(report.rescale, 1)
end)

test("ties keep the lower index, and rescale=l1 keeps the L1 norm", function()
  local d = lopper.from_table({ { 2, -2, 1, 2 } })
  expect_near(plugin.prune(d, { rate = 0.5 }), { 2, -2, 0, 0 })
  expect_near(plugin.prune(d, { rate = 0.5, rescale = "l1" }), { 3.5, -3.5, 0, 0 }, 1e-6)
end)
