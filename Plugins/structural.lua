-- Structural DPP: drop whole rows (output neurons) or columns (input features) of
-- the delta, each with probability p, and rescale what is kept.
return {
  name = "structural", version = "1.0.0", api = 1,
  summary = "Random drops of whole delta rows or columns, rescaled",
  params = {
    rate = { type = "number", default = 0.5, min = 0, max = 1, doc = "drop rate p of rows or columns" },
    axis = { type = "string", default = "rows", choices = { "rows", "cols" }, doc = "drop whole rows or whole columns" },
    rescale = { type = "string", default = "dare", choices = { "dare", "q", "l1", "none" },
                doc = "factor for kept entries: dare 1/(1-p), q 1/q, l1 norm matching, none" },
    q = { type = "number", default = 1, min = 0.000001, max = 1, doc = "q for rescale=q" },
  },
  prune = function(delta, ctx)
    local p, rows = ctx.params.rate, ctx.params.axis == "rows"
    if p == 0 then return nil end
    local shape = delta:shape()
    if #shape == 1 then
      -- A bias belongs to its layer's output rows: with row drops it follows the
      -- weight's row mask (drawn from the weight's name); column drops leave it whole.
      if not rows then return nil end
      shape = { shape[1], 1 }
      delta = delta:reshape(shape)
    end
    local layer = ctx.name:gsub("%.bias$", ".weight")
    local keep = lopper.bernoulli({ rows and shape[1] or shape[2] }, 1 - p, ctx.seed, layer .. "#" .. ctx.params.axis)
    local kept = rows and delta:scale_rows(keep) or delta:scale_cols(keep)
    local scale
    if ctx.params.rescale == "l1" then
      local norm = kept:norm(1)
      scale = norm > 0 and delta:norm(1) / norm or 1
    else
      scale = lopper.rescale_factor(ctx.params.rescale, nil, nil, p, ctx.params.q)
    end
    ctx.report("rescale", scale)
    ctx.report("kept_" .. ctx.params.axis, keep:count_nonzero())
    return (kept * scale):reshape(ctx.shape)
  end,
}
