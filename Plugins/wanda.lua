-- WANDA on the delta (Sun et al., 2023, applied to delta parameters as in the DAREx
-- paper): score |delta_ij| * ||X_j||_2, where ||X_j|| is the L2 norm of input feature j
-- over the calibration tokens (`lopper calibrate`), and keep the top scores within each
-- output row. No rescale by default. Biases have no inputs: they keep their largest |delta|.
return {
  name = "wanda", version = "1.0.0", api = 1,
  summary = "Keep the largest |delta| * ||x|| per output row (needs --calibration)",
  params = {
    rate = { type = "number", default = 0.9, min = 0, max = 1, doc = "drop rate p: keep the top 1 - p of each row" },
    granularity = { type = "string", default = "row", choices = { "row", "tensor", "nm" },
                    doc = "compare scores within each output row (the paper), over the tensor, or n of m" },
    n = { type = "integer", default = 2, min = 1, doc = "n of n:m (granularity=nm)" },
    m = { type = "integer", default = 4, min = 1, doc = "m of n:m (granularity=nm)" },
    rescale = { type = "string", default = "none", choices = { "dare", "q", "l1", "none" },
                doc = "factor for kept entries: dare 1/(1-p), q 1/q, l1 norm matching, none" },
    q = { type = "number", default = 1, min = 0.000001, max = 1, doc = "q for rescale=q" },
  },
  score = function(delta, ctx)
    if #ctx.shape == 1 then return delta:abs() end
    local norms = ctx.stats and ctx.stats.input_norm
    if not norms then
      error("wanda needs calibration statistics for " .. ctx.name ..
            ": run lopper calibrate --model BASE --data TEXT --out STATS, then prune with --calibration STATS")
    end
    return delta:abs():scale_cols(norms)
  end,
}
