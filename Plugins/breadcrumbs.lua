-- Model Breadcrumbs (Davari & Belilovsky, 2023, arXiv:2312.06795): per tensor, drop the
-- largest-magnitude outliers (the top `beta` fraction of |delta|) and the smallest
-- entries, keep the rest unscaled. As a score: outliers score -1, below every |delta|,
-- so the host's keep-top of 1 - rate removes them first, then the smallest.
return {
  name = "breadcrumbs", version = "1.0.0", api = 2,
  summary = "Drop the top-beta outliers and the smallest |delta| (Davari & Belilovsky, 2023)",
  params = { beta = { type = "number", default = 0.01, min = 0, max = 1, doc = "fraction of the largest |delta| dropped as outliers" } },
  score = function(delta, ctx)
    if ctx.params.rate < ctx.params.beta then error("rate (all dropped) must be at least beta (the outliers dropped)") end
    local magnitude = delta:abs()
    local outliers = math.floor(ctx.params.beta * magnitude:numel())
    if outliers == 0 then return magnitude end
    return magnitude:where(magnitude:lt(magnitude:kth(outliers)), -1)
  end,
}
