-- DARE's random drop (Yu et al., 2023, arXiv:2311.03099) with the rescale mergekit uses
-- now (mergekit, Goddard et al., 2024, arXiv:2403.13257: `rescale` by L1-norm matching):
-- the same Bernoulli(1 - p) mask as dare, then the kept entries are scaled so the delta
-- keeps its L1 norm, s = |D|_1 / |m * D|_1, instead of 1 / (1 - p).
return {
  name = "dare_l1", version = "1.0.0", api = 2,
  summary = "DARE's mask, rescaled so |D'|_1 = |D|_1 (mergekit's L1-norm matching)",
  prune = function(delta, ctx)
    local mask = ctx.rng:bernoulli(1 - ctx.params.rate)
    local kept = (delta * mask):abs():sum()
    if kept == 0 then return delta * mask end
    local s = delta:abs():sum() / kept
    ctx.report("rescale", s)
    return delta * mask * s
  end,
}
