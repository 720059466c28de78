-- Magnitude pruning of the delta: the score is |delta|; the host keeps the top 1 - p
-- over the tensor, each row, n of m or whole rows/columns (granularity), with no
-- rescale unless asked (rescale).
return {
  name = "magnitude", version = "2.0.0", api = 2,
  summary = "Keep the largest |delta| per tensor or per row; no rescale by default",
  score = function(delta)
    return delta:abs()
  end,
}
