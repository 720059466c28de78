-- DAREx-L2 (Deng et al., 2024, "DARE the Extreme", arXiv:2410.09344): the DARE step for a model
-- fine-tuned with AdamR-L2 (`lopper finetune --optimizer adamr-l2`), whose decay toward the base
-- keeps the delta small enough that DARE's rescale 1/(1-p) survives p = 0.99 and beyond. The
-- mask and rescale are dare's (Bernoulli(1 - p) keyed by seed and tensor name, then / (1 - p)).
-- The report gives what makes it safe, the size of the delta against the weights'; a note warns
-- when a tensor's delta is too large to look AdamR-trained (the line `lopper diff` draws for
-- "large" deltas, 10% of mean |W|, by default).
return {
  name = "darex_l2", version = "1.0.0", api = 2,
  summary = "DARE for AdamR-L2 fine-tuned models (DAREx-L2), reporting the delta's size against the weights",
  params = {
    max_relative = { type = "number", default = 0.1, min = 0,
                     doc = "mean |delta| / mean |W| above which the tensor does not look AdamR-trained (a note)" },
  },
  prune = function(delta, ctx)
    local keep = 1 - ctx.params.rate
    local size, weights = delta:abs():mean(), ctx.finetuned:abs():mean()
    local relative = weights > 0 and size / weights or math.huge
    ctx.report("mean_abs_delta", size)
    ctx.report("relative_delta", relative)
    if relative > ctx.params.max_relative then
      ctx.note(string.format("mean |delta| is %.3g%% of mean |W| (above %.3g%%): this does not look AdamR-L2-trained, "
        .. "and DARE at p = %g may fail; fine-tune with `lopper finetune --optimizer adamr-l2`, or use darex_q or magnitude",
        relative * 100, ctx.params.max_relative * 100, ctx.params.rate))
    end
    return delta * ctx.rng:bernoulli(keep) / keep
  end,
}
