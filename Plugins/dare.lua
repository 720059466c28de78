-- DARE (Yu et al., 2023): drop each delta entry with probability p, rescale the rest.
-- One fused pass per tensor (ctx:dare); the mask is Bernoulli(1 - p) keyed by
-- (seed, tensor name), so the same seed gives the same mask anywhere.
return {
  name = "dare", version = "1.0.0", api = 1,
  summary = "Random drop and rescale (Yu et al., 2023)",
  params = {
    rate = { type = "number", default = 0.9, min = 0, max = 1, doc = "drop rate p (fraction of delta entries removed)" },
    rescale = { type = "string", default = "dare", choices = { "dare", "q", "l1", "none" },
                doc = "factor for kept entries: dare 1/(1-p), q 1/q, l1 norm matching, none" },
    q = { type = "number", default = 1, min = 0.000001, max = 1, doc = "q for rescale=q" },
  },
  apply = function(ctx)
    local p, how = ctx.params.rate, ctx.params.rescale
    if p == 0 then return nil end
    if how == "l1" then
      -- Norm matching needs the kept entries first: draw the same mask, then scale.
      local delta = ctx:delta()
      local mask = ctx.rng:bernoulli(delta, 1 - p)
      return ctx:masked(mask, lopper.rescale_factor("l1", delta, mask, p))
    end
    return ctx:dare(1 - p, lopper.rescale_factor(how, nil, nil, p, ctx.params.q))
  end,
}
