-- Hand-computed: |delta| = 0.1 .. 1.0 with alternating signs; beta = 0.1 drops the one
-- outlier (1.0), rate = 0.5 keeps 5 of 10: 0.5 .. 0.9, unscaled.
test("drops the outlier and the smallest, keeps the middle as it was", function()
  local d = lopper.from_table({ { 0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9, -1.0 } })
  expect_near(plugin.prune(d, { rate = 0.5, beta = 0.1 }), { 0, 0, 0, 0, 0.5, -0.6, 0.7, -0.8, 0.9, 0 }, 1e-7)
end)

test("beta = 0 is magnitude pruning", function()
  local d = lopper.from_table({ { 3, -1, 2, -4 } })
  expect_near(plugin.prune(d, { rate = 0.5, beta = 0 }), { 3, 0, 0, -4 })
end)
