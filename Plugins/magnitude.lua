-- Magnitude pruning of the delta: keep the entries with the largest |delta|, over the
-- whole tensor or within each row (or n of every m), and by default no rescale.
-- The core does the selection from the scores (the `score` hook).
return {
  name = "magnitude", version = "1.0.0", api = 1,
  summary = "Keep the largest |delta| per tensor or per row; no rescale by default",
  params = {
    rate = { type = "number", default = 0.9, min = 0, max = 1, doc = "drop rate p: keep the top 1 - p" },
    granularity = { type = "string", default = "tensor", choices = { "tensor", "row", "nm", "rows", "cols" },
                    doc = "compare entries over the whole tensor, within each row, n of m along rows, or whole rows/cols" },
    n = { type = "integer", default = 2, min = 1, doc = "n of n:m (granularity=nm)" },
    m = { type = "integer", default = 4, min = 1, doc = "m of n:m (granularity=nm)" },
    rescale = { type = "string", default = "none", choices = { "dare", "q", "l1", "none" },
                doc = "factor for kept entries: dare 1/(1-p), q 1/q, l1 norm matching, none" },
    q = { type = "number", default = 1, min = 0.000001, max = 1, doc = "q for rescale=q" },
  },
  score = function(delta, ctx)
    return delta:abs()
  end,
}
