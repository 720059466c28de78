-- DAREx-q (Deng et al., 2024): DARE's Bernoulli(1 - p) mask, but kept entries are
-- rescaled by 1/q with q in (1 - p, 1] instead of 1/(1 - p), which fails at high p.
-- q comes from the user (q = ...), or per tensor from the closed-form MSE-optimal
-- q* = (1-p) + p sum_i Q_i / sum_i S_i^2 (a derivation, not in the paper), or from
-- the paper's per-row analytical bound with eta. Without calibration statistics the
-- inputs are taken as 1, and the report says so.
return {
  name = "darex_q", version = "1.0.0", api = 1,
  summary = "DARE with a rescale 1/q, q chosen in (1-p, 1] (Deng et al., 2024)",
  params = {
    rate = { type = "number", default = 0.99, min = 0, max = 0.999999, doc = "drop rate p" },
    mode = { type = "string", default = "closed_form", choices = { "fixed", "closed_form", "analytical" },
             doc = "how q is chosen: fixed (the q parameter), closed_form (MSE-optimal per tensor), analytical (per-row bound, mean per tensor)" },
    q = { type = "number", min = 0.000001, max = 1, doc = "q for mode=fixed (must exceed 1 - rate)" },
    eta = { type = "number", default = 1, min = 0.000001, doc = "eta of the analytical bound" },
    gamma = { type = "number", default = 0.05, min = 0.000001, max = 0.999999, doc = "gamma of the analytical bound" },
  },
  apply = function(ctx)
    local p, mode = ctx.params.rate, ctx.params.mode
    if p == 0 then return nil end
    local q
    if mode == "fixed" then
      q = ctx.params.q
      if q == nil then error("mode=fixed needs q (e.g. --set q=0.2)") end
      if q <= 1 - p then error(("q = %g must exceed 1 - rate = %g"):format(q, 1 - p)) end
    else
      -- A bias adds to the output as if its input were 1.
      local inputs = ctx.stats and ctx.stats.input_mean
      if not inputs and #ctx.shape == 2 then ctx.note("no calibration statistics: inputs taken as 1") end
      -- Row sums of the delta straight from the two weight tensors (no F32 delta copy).
      if mode == "closed_form" then
        q = lopper.darex_q(ctx.base, p, { mode = "closed_form", inputs = inputs, finetuned = ctx.finetuned })
      else
        local rows
        q, rows = lopper.darex_q(ctx.base, p, { mode = "analytical", eta = ctx.params.eta, gamma = ctx.params.gamma,
                                                inputs = inputs, finetuned = ctx.finetuned })
        ctx.report("q_row_min", rows:min())
        ctx.report("q_row_max", rows:max())
      end
    end
    ctx.report("q", q)
    return ctx:dare(1 - p, 1 / q)
  end,
}
