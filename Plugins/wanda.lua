-- WANDA on the delta (Sun et al., 2023, applied to delta parameters as in the DAREx
-- paper): score |delta_ij| * ||X_j||_2, where ||X_j|| is the L2 norm of input feature j
-- over the calibration tokens (`lopper calibrate`); the host keeps the top scores
-- within each output row. Biases have no inputs: they keep their largest |delta|.
return {
  name = "wanda", version = "2.0.0", api = 2,
  summary = "Keep the largest |delta| * ||x|| per output row (needs --calibration)",
  defaults = { granularity = "row" },
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
