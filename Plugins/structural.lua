-- Structural DPP: drop whole rows (output neurons) or columns (input features) of the
-- delta, each with probability p, and rescale what is kept by 1 / (1 - p). A bias
-- follows its weight's row mask (drawn from the weight's name); column drops keep it.
return {
  name = "structural", version = "2.0.0", api = 2,
  summary = "Random drops of whole delta rows or columns, rescaled",
  defaults = { rate = 0.5 },
  params = { axis = { type = "string", default = "rows", choices = { "rows", "cols" }, doc = "drop whole rows or columns" } },
  prune = function(delta, ctx)
    local p, rows, shape = ctx.params.rate, ctx.params.axis == "rows", ctx.shape
    if #shape == 1 and not rows then return nil end
    if #shape == 1 then shape = { shape[1], 1 } end
    local weight = ctx.name:gsub("%.bias$", ".weight")
    local keep = lopper.bernoulli({ rows and shape[1] or shape[2] }, 1 - p, ctx.seed, weight .. "#" .. ctx.params.axis)
    ctx.report("kept_" .. ctx.params.axis, keep:count_nonzero())
    local d = delta:reshape(shape)
    local kept = rows and d:scale_rows(keep) or d:scale_cols(keep)
    return (kept / (1 - p)):reshape(ctx.shape)
  end,
}
