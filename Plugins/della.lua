-- DELLA-Merging's MagPrune (Deep et al., 2024, "DELLA-Merging: Reducing Interference in
-- Model Merging through Magnitude-Based Sampling", arXiv:2406.11617): within each row,
-- entry i is kept with a probability that grows with the rank of |delta_i|, from
-- keep - epsilon (smallest) to keep + epsilon (largest), linear in the rank, as
-- mergekit's `della_magprune` ranks them; kept entries are rescaled by 1 / p_i, so that
-- E[D'] = D. The mask comes from ctx.rng: the same seed gives the same bytes.
return {
  name = "della", version = "1.0.0", api = 2,
  summary = "Keep probabilities ranked by |delta| per row, rescaled by 1/p (DELLA, Deep et al., 2024)",
  properties = { unbiased = true },
  params = {
    epsilon = { type = "number", default = 0.05, min = 0, max = 0.5,
                doc = "half-width of the keep probabilities: keep - epsilon for the smallest |delta| of a row, keep + epsilon for the largest" },
  },
  prune = function(delta, ctx)
    local keep, epsilon = 1 - ctx.params.rate, ctx.params.epsilon
    if keep - epsilon <= 0 or keep + epsilon > 1 then
      error(string.format("epsilon %g must leave the keep probabilities %g +/- epsilon in (0, 1]", epsilon, keep))
    end
    local n = ctx.shape[#ctx.shape]
    local step = n > 1 and 2 * epsilon / (n - 1) or 0
    local probability = lopper.rank(delta:abs(), { granularity = "row" }) * step + (keep - epsilon)
    return delta * ctx.rng:uniform():lt(probability) / probability
  end,
}
