-- TIES-Merging's trim (Yadav et al., 2023, "TIES-Merging: Resolving Interference When
-- Merging Models", arXiv:2306.01708): keep the top-k of |delta| over the whole model, not
-- per tensor (the paper's k = 20% is rate 0.8), unscaled. The scope is the host's:
-- granularity = "model" makes `lopper prune` score every selected tensor in a first
-- streaming pass and keep the model's top 1 - rate (ties: earlier tensor, lower index).
-- A single tensor (plugin test, the REPL's try) is its own model.
return {
  name = "ties", version = "1.0.0", api = 2,
  summary = "Keep the top 1 - rate of |delta| over the whole model (TIES-Merging's trim, Yadav et al., 2023)",
  defaults = { rate = 0.8, granularity = "model" },
  score = function(delta) return delta:abs() end,
}
