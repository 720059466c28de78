-- DARE (Yu et al., 2023): drop each delta entry with probability p and rescale the
-- rest by 1 / (1 - p). The mask is Bernoulli(1 - p) keyed by (seed, tensor name), so
-- the same seed gives the same mask anywhere; the expression runs as one fused pass.
return {
  name = "dare", version = "2.0.0", api = 2,
  summary = "Random drop and rescale (Yu et al., 2023)",
  prune = function(delta, ctx)
    local keep = 1 - ctx.params.rate
    return delta * ctx.rng:bernoulli(keep) / keep
  end,
}
