-- DAREx-q (Deng et al., 2024): DARE's Bernoulli(1 - p) mask, but kept entries are
-- rescaled by 1/q with q in [1 - p, 1] instead of 1/(1 - p), which fails at high p.
-- q comes from the user (mode=fixed), from the closed-form MSE-optimal
-- q* = (1-p) + p sum_i Q_i / sum_i S_i^2 (a derivation, not in the paper), or from the
-- paper's per-row analytical bound with eta. Without calibration statistics the inputs
-- are taken as 1, and the report says so. mode=search (and analytical with data) is
-- run by `lopper prune --data FILE`, which searches q (or eta) on the fine-tuned model's
-- outputs and then prunes with mode=fixed and the q it found (per tensor for analytical).
return {
  name = "darex_q", version = "2.0.0", api = 2,
  summary = "DARE with a rescale 1/q, q chosen in (1-p, 1] (Deng et al., 2024)",
  defaults = { rate = 0.99 },
  params = {
    mode = { type = "string", default = "closed_form", choices = { "fixed", "closed_form", "analytical", "search" },
             doc = "how q is chosen: fixed (the q parameter), closed_form (MSE-optimal per tensor), analytical (per-row bound), search (global q searched on --data)" },
    q = { type = "number", min = 0.000001, max = 1, only = { mode = "fixed" }, doc = "q, at least 1 - rate" },
    -- The grid of `lopper prune --data`'s search (q for mode=search, eta for analytical).
    q_min = { type = "number", min = 1e-6, max = 1, only = { mode = "search" }, doc = "lowest q (1 - rate)" }, q_max = { type = "number", min = 1e-6, max = 1, only = { mode = "search" }, doc = "highest q (1)" },
    eta_min = { type = "number", min = 1e-6, only = { mode = "analytical" }, doc = "lowest eta (0.01)" }, eta_max = { type = "number", min = 1e-6, only = { mode = "analytical" }, doc = "highest eta (10)" },
    steps = { type = "integer", min = 2, max = 10000, only = { mode = { "search", "analytical" } }, doc = "coarse grid points, geometric (default 16)" },
    eta = { type = "number", default = 1, min = 0.000001, only = { mode = "analytical" }, doc = "eta of the bound" },
    gamma = { type = "number", default = 0.05, min = 0.000001, max = 0.999999, only = { mode = "analytical" }, doc = "gamma of the bound" },
  },
  prune = function(delta, ctx)
    local p, q = ctx.params.rate, ctx.params.q
    if ctx.params.mode == "search" then error("mode=search chooses q from text: run lopper prune with --data FILE") end
    if ctx.params.mode == "fixed" then
      if not q then error("mode=fixed needs q (e.g. --set q=0.2)") end
      if q < (1 - p) * (1 - 1e-9) then error(("q = %g must be at least 1 - rate = %g"):format(q, 1 - p)) end
    else
      local inputs = ctx.stats and ctx.stats.input_mean
      if not inputs and #ctx.shape == 2 then ctx.note("no calibration statistics: inputs taken as 1") end
      q = lopper.darex_q{ base = ctx.base, finetuned = ctx.finetuned, rate = p, mode = ctx.params.mode,
                          inputs = inputs, eta = ctx.params.eta, gamma = ctx.params.gamma }
    end
    ctx.report("q", q)
    return delta * ctx.rng:bernoulli(1 - p) / q
  end,
}
