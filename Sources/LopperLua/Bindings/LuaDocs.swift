import CLua
import CLuaShim

/// One documented name of the Lua API.
public struct LuaDoc: Sendable {
    public enum Section: String, CaseIterable, Sendable {
        case globals = "Globals"
        case module = "The lopper module"
        case tensor = "Tensor methods"
        case operators = "Tensor operators"
        case checkpoint = "Checkpoints and deltas"
        case models = "Models"
        case pruning = "Pruning kernels and helpers"
        case repl = "REPL helpers"
    }
    /// The lookup name: `lopper.load`, `Tensor:sum`, `__add`, `help`.
    public var name: String
    public var section: Section
    public var signature: String
    public var summary: String
}

/// The single table of Lua API documentation. `help(x)` reads it and `lopper docs`
/// renders it to Docs/lua-api.md; tests check that every registered function has an
/// entry and every entry a function, so docs and code cannot drift.
public enum LuaDocs {
    public static let entries: [LuaDoc] = globals + module + tensor + operators + checkpoint + models + pruning + repl

    static let globals: [LuaDoc] = [
        .init(name: "help", section: .globals, signature: "help([x])",
              summary: "Prints the documentation of `x`: a function, a tensor, a checkpoint or a name such as `\"lopper.load\"` or `\"sum\"`. Without an argument, lists everything."),
    ]

    static let module: [LuaDoc] = [
        .init(name: "lopper.version", section: .module, signature: "lopper.version",
              summary: "The version of lopper, a string such as `\"0.1.0\"`."),
        .init(name: "lopper.zeros", section: .module, signature: "lopper.zeros(shape [, dtype]) -> Tensor",
              summary: "A tensor of zeros. `shape` is a table such as `{4096, 11008}`; `dtype` defaults to `\"F32\"`."),
        .init(name: "lopper.ones", section: .module, signature: "lopper.ones(shape [, dtype]) -> Tensor",
              summary: "A tensor of ones."),
        .init(name: "lopper.full", section: .module, signature: "lopper.full(shape, value [, dtype]) -> Tensor",
              summary: "A tensor with every element `value`."),
        .init(name: "lopper.rand", section: .module, signature: "lopper.rand(shape, seed [, name]) -> Tensor",
              summary: "Uniform F32 values in [0, 1) from the Philox generator keyed by (`seed`, `name`): the same on every machine and thread count."),
        .init(name: "lopper.bernoulli", section: .module, signature: "lopper.bernoulli(shape, keep, seed [, name]) -> Tensor",
              summary: "A BOOL mask whose elements are 1 with probability `keep`, keyed by (`seed`, `name`); the same stream as the fused DARE kernel."),
        .init(name: "lopper.from_table", section: .module, signature: "lopper.from_table(values [, dtype]) -> Tensor",
              summary: "A tensor from a (nested) table of numbers: `{1, 2, 3}` has shape {3}, `{{1, 2}, {3, 4}}` shape {2, 2}."),
        .init(name: "lopper.where", section: .module, signature: "lopper.where(mask, a, b) -> Tensor",
              summary: "Elementwise `mask ? a : b`; `b` may be a number. The mask is BOOL (or any tensor: nonzero is true)."),
    ]

    static let tensor: [LuaDoc] = [
        method("shape", "t:shape() -> {dims}", "The shape as a table of integers."),
        method("dtype", "t:dtype() -> string", "The element type, as safetensors names it (`\"BF16\"`)."),
        method("numel", "t:numel() -> integer", "The number of elements (also `#t`)."),
        method("abs", "t:abs() -> Tensor", "Elementwise absolute value."),
        method("sign", "t:sign() -> Tensor", "Elementwise sign: -1, 0 or 1 (NaN stays NaN)."),
        method("sum", "t:sum() -> number", "Sum of all elements (accumulated in f64)."),
        method("mean", "t:mean() -> number", "Mean of all elements."),
        method("var", "t:var([correction]) -> number", "Variance; `correction` 1 gives the sample variance (default 0)."),
        method("std", "t:std([correction]) -> number", "Standard deviation, the square root of `t:var(correction)`."),
        method("norm", "t:norm([p [, dim]]) -> number | Tensor", "The p-norm (p = 1, 2 or \"inf\"; default 2). With `dim` 2 one norm per row, with `dim` 1 one per column."),
        method("min", "t:min() -> number", "Smallest element (NaN if any element is NaN)."),
        method("max", "t:max() -> number", "Largest element (NaN if any element is NaN)."),
        method("count_nonzero", "t:count_nonzero() -> integer", "How many elements are not zero (the set elements of a mask)."),
        method("kth", "t:kth(k) -> number", "The k-th largest value (k = 1 is the maximum), by linear-time selection."),
        method("topk_mask", "t:topk_mask(k [, \"row\"]) -> Tensor", "A BOOL mask of exactly k largest values (ties: lower index wins); with \"row\", k per row."),
        method("nm_mask", "t:nm_mask(n, m) -> Tensor", "N:M sparsity mask: in each group of m consecutive elements of a row keep the n largest."),
        method("bernoulli", "t:bernoulli(keep, seed [, name]) -> Tensor", "A BOOL mask shaped like `t`, 1 with probability `keep`, keyed by (`seed`, `name`)."),
        method("where", "t:where(mask, other) -> Tensor", "`t` where `mask` is set, else `other` (a tensor or a number)."),
        method("to", "t:to(dtype) -> Tensor", "A copy converted to `dtype` (round to nearest even; NaN and Inf kept)."),
        method("clone", "t:clone() -> Tensor", "A copy in its own memory."),
        method("reshape", "t:reshape(shape) -> Tensor", "The same data with another shape of the same element count (no copy)."),
        method("stats", "t:stats() -> table", "One pass: `{count, mean, std, min, max, nonzero, nan}`."),
        method("hist", "t:hist([bins]) -> string", "A histogram drawn with Unicode blocks (default 20 bins over [min, max]); `print(t:hist())`."),
        method("row_sums", "t:row_sums() -> Tensor", "Sum of each row of a 2-D tensor, shape {rows}."),
        method("col_sums", "t:col_sums() -> Tensor", "Sum of each column of a 2-D tensor, shape {cols}."),
        method("row_norms", "t:row_norms([p]) -> Tensor", "p-norm of each row, shape {rows}."),
        method("col_norms", "t:col_norms([p]) -> Tensor", "p-norm of each column, shape {cols}."),
        method("gt", "t:gt(x) -> Tensor", "BOOL mask of `t > x`; `x` is a tensor of the same shape or a number. NaN compares false."),
        method("ge", "t:ge(x) -> Tensor", "BOOL mask of `t >= x`."),
        method("lt", "t:lt(x) -> Tensor", "BOOL mask of `t < x`."),
        method("le", "t:le(x) -> Tensor", "BOOL mask of `t <= x`."),
        method("eq", "t:eq(x) -> Tensor", "BOOL mask of `t == x`."),
        method("ne", "t:ne(x) -> Tensor", "BOOL mask of `t ~= x`."),
        method("totable", "t:totable() -> {numbers}", "The elements as a flat Lua table (small tensors only, at most 2^20 elements)."),
    ]

    static let operators: [LuaDoc] = [
        op("__add", "a + b", "Elementwise sum (F32); either side may be a number. Shapes must match. With a lazy operand (a plugin's `delta`, an `rng` mask) the result is lazy: computed in one fused pass when used, with the same bits."),
        op("__sub", "a - b", "Elementwise difference (F32); either side may be a number."),
        op("__mul", "a * b", "Elementwise product (F32); with a number, scaling; with a BOOL mask, `mask ? a : +0` (masks take part in products only)."),
        op("__div", "a / b", "Elementwise quotient (F32, a true division); either side may be a number."),
        op("__unm", "-a", "Elementwise negation (F32)."),
        op("__len", "#a", "The number of elements."),
        op("__tostring", "tostring(a)", "Shape, dtype and mean/std/min/max; tensors of up to 16 elements print in full."),
    ]

    static let pruning: [LuaDoc] = [
        .init(name: "lopper.fused_dare", section: .pruning,
              signature: "lopper.fused_dare(base, finetuned, {keep=, scale=, seed=, name=, output=, dtype=}) -> Tensor",
              summary: "DARE in one pass, for scripts: `base + m * (finetuned - base) * scale` with `m ~ Bernoulli(keep)` drawn from (seed, name) exactly as `lopper.bernoulli` draws it; `scale` defaults to 1/keep. `output = \"delta\"` leaves out the base; `dtype` sets the result's dtype (default: finetuned's). Plugins need not call it: `delta * ctx.rng:bernoulli(keep) / keep` runs on the same kernel."),
        .init(name: "lopper.fused_mask", section: .pruning,
              signature: "lopper.fused_mask(base, finetuned, mask [, {scale=, output=, dtype=}]) -> Tensor",
              summary: "The same pass with a given mask: BOOL (kept or not) or per-element factors; kept entries are multiplied by `scale`."),
        .init(name: "lopper.darex_q", section: .pruning,
              signature: "lopper.darex_q{delta= | base=, finetuned=; rate=, mode=, eta=, gamma=, inputs=} -> q [, rows]",
              summary: "DAREx-q's rescale q in (1-p, 1]. `mode = \"closed_form\"` (default): the MSE-optimal `q* = (1-p) + p sum Q_i / sum S_i^2` (a derivation, not in the paper). `\"analytical\"`: the paper's per-row bound minimised on a 0.001 grid from 1-p, with `eta` (default 1) and `gamma` (0.05); returns the mean and the per-row q's. `inputs`: per-column input means (default 1). With `base` and `finetuned` the row sums come from one pass over both weights, without an F32 copy of the delta."),
        .init(name: "lopper.keep_top", section: .pruning,
              signature: "lopper.keep_top(scores, {keep=, granularity=, n=, m=}) -> mask",
              summary: "What the host does with a `score` hook's result: a BOOL mask keeping the highest scores, a fraction `keep` of the tensor (`\"tensor\"`, default), of each row (`\"row\"`), n of every m along rows (`\"nm\"`), or whole rows/columns ranked by their score sums (`\"rows\"`, `\"cols\"`). Ties keep the lower index. `\"model\"` is `\"tensor\"` here: the model-wide selection is the host's, in `lopper prune` (Docs/plugins.md)."),
        .init(name: "lopper.rank", section: .pruning,
              signature: "lopper.rank(scores [, {granularity=}]) -> Tensor",
              summary: "Ascending ranks as F32, `0` for the smallest score and `n - 1` for the largest, over the whole tensor (`\"tensor\"`, default) or within each row of a 1-D or 2-D tensor (`\"row\"`): the order `keep_top` uses (NaN lowest, -0 equal to +0, and among equal scores the lower index ranks higher), so the ranks `>= n - k` are what it keeps. For keep probabilities that grow with the rank, as DELLA's (`Plugins/della.lua`). Exact up to 2^24 entries per row."),
        .init(name: "lopper.rescale_factor", section: .pruning,
              signature: "lopper.rescale_factor{how=, rate=, q=, delta=, mask=} -> number",
              summary: "The factor for kept entries: `how = \"dare\"` 1/(1-rate), `\"q\"` 1/q, `\"l1\"` ||D||_1 / ||m*D||_1 (norm matching, as mergekit does; needs `delta` and `mask`), `\"none\"` 1 (default)."),
        .init(name: "Tensor:scale_rows", section: .pruning, signature: "a:scale_rows(v) -> Tensor",
              summary: "Row i multiplied by `v[i]` (F32 result); `v` may be a BOOL mask, so a row mask becomes a pruned delta."),
        .init(name: "Tensor:scale_cols", section: .pruning, signature: "a:scale_cols(v) -> Tensor",
              summary: "Column j multiplied by `v[j]` (F32 result)."),
    ]

    // The checkpoint bindings (LopperIO): load, delta, save, Checkpoint and Delta. Trusted states only.
    static let checkpoint: [LuaDoc] = [
        .init(name: "lopper.load", section: .checkpoint, signature: "lopper.load(path [, base]) -> Checkpoint",
              summary: "Opens a `.safetensors` file or a checkpoint folder (one file, shards with a `*.safetensors.index.json`, or loose shards), reading only the headers. With `base` (a path or Checkpoint), `path` may be a PEFT LoRA adapter folder: the base with the adapter merged in, each adapted tensor computed (F32) when read. `ck[name]` is a tensor view of the mapped file (no copy; nil for unknown names, and methods win over tensors of the same name: use `ck:tensor(name)`); `ck:names()` and `pairs(ck)` go in file order; `#ck` counts the tensors; `tostring(ck)` is a one-line summary. Not available in plugins."),
        .init(name: "lopper.delta", section: .checkpoint, signature: "lopper.delta(base, finetuned) -> Delta | Tensor",
              summary: "With two tensors: `finetuned - base` at once, as F32 (one fused pass; shapes must match). With two checkpoints (or paths; the second may be a LoRA adapter folder over the first): a lazy Delta whose `d[name]` computes `finetuned[name] - base[name]` (F32) on access; nothing is read before. Not available in plugins (they receive the delta)."),
        .init(name: "lopper.save", section: .checkpoint, signature: "lopper.save(tensors, path [, {shard_size=, metadata=, dtype=, overwrite=, copy_files=}])",
              summary: "Writes tensors as safetensors. `tensors` is a table `{name = tensor}` (written in name order), an array of `{name, tensor}` pairs (in order), a Checkpoint or Delta (their order; a Delta's tensors are computed one at a time), or an iterator function returning `name, tensor` until nil (e.g. `coroutine.wrap`); an iterator is called once per tensor and its tensors are streamed to a temporary file beside the output, then assembled, so only one tensor is in memory at a time. A `path` ending in `.safetensors` is one file; any other path a checkpoint folder with shards of at most `shard_size` bytes (a number or `\"2GB\"`, `\"500MB\"`, `\"1GiB\"`; default 5GB) and `model.safetensors.index.json` when there are several. `metadata` (strings) goes into `__metadata__`; `dtype` converts every floating-point tensor (integer and BOOL tensors are kept; a Delta is written in it); `overwrite = true` replaces an existing output; `copy_files = ck` copies the config and tokenizer files of a checkpoint folder. The output appears under its name only when complete. Not available in plugins."),

        .init(name: "Checkpoint:names", section: .checkpoint, signature: "ck:names() -> {names}",
              summary: "Tensor names in file order (also `pairs(ck)` gives `name, tensor` in that order; `#ck` counts them)."),
        .init(name: "Checkpoint:info", section: .checkpoint, signature: "ck:info(name) -> {dtype, shape, bytes}",
              summary: "The header entry of a tensor without reading its data: `{dtype = \"BF16\", shape = {...}, bytes = n}`."),
        .init(name: "Checkpoint:metadata", section: .checkpoint, signature: "ck:metadata() -> table",
              summary: "The `__metadata__` strings of the file (of all shards for a folder; the first shard wins where they differ)."),
        .init(name: "Checkpoint:tensor", section: .checkpoint, signature: "ck:tensor(name) -> Tensor",
              summary: "Like `ck[name]`, but an unknown name is an error naming the checkpoint and the tensor (with a close name when there is one)."),
        .init(name: "Delta:names", section: .checkpoint, signature: "d:names() -> {names}",
              summary: "Names of the fine-tuned checkpoint that also exist in the base, in the fine-tuned file order (`pairs(d)` iterates `name, delta`; `#d` counts them). A name whose shapes differ is listed; computing its delta is an error naming the tensor and both shapes."),
        .init(name: "Delta:tensor", section: .checkpoint, signature: "d:tensor(name) -> Tensor",
              summary: "The delta `finetuned[name] - base[name]` as F32, computed now (also `d[name]`, which gives nil for unknown names)."),
        .init(name: "Delta:base", section: .checkpoint, signature: "d:base(name) -> Tensor",
              summary: "The base tensor of `name` (a view of the file)."),
        .init(name: "Delta:finetuned", section: .checkpoint, signature: "d:finetuned(name) -> Tensor",
              summary: "The fine-tuned tensor of `name` (a view of the file)."),
    ]

    // The model bindings (LopperModels): forward passes, perplexity, output change. Trusted states only.
    static let models: [LuaDoc] = [
        .init(name: "lopper.model", section: .models, signature: "lopper.model(dir [, weights]) -> Model",
              summary: "Loads a Hugging Face model folder (config.json, safetensors, and tokenizer.json when present) for evaluation: Llama, Qwen2 and Mistral decoders, BERT and RoBERTa encoders (with a pooler or classifier head when the checkpoint has one). Linear weights are widened to F32 once, when the model is built; the forward pass computes in F32. `weights` overrides tensors so that a pruned model is evaluated in memory without writing it: a Checkpoint (its tensors win), a table `{name = tensor}` or a function `f(name) -> Tensor | nil` (called for every name the model looks up, including probes for names that may not exist; nil means the folder's tensor). Names not overridden come from `dir`; a table name that is neither used nor in `dir` is an error (a typo). `tostring(m)` is a one-line summary. Not available in plugins."),
        .init(name: "lopper.search_q", section: .models,
              signature: "lopper.search_q{base=, finetuned=, rate=, seeds=, texts= | data=, seq_len=, metric=, maximize=, q_min=, q_max=, steps=, drop_outlier=} -> {q=, value=, dare=, curve=}",
              summary: "DAREx-q's global q by search: tries q on a grid spaced geometrically from `q_min` (default 1-rate, DARE) up to `q_max` (default 1) in `steps` points (default 16; stopping after 3 steps without improvement), then a 10x finer grid around the best, each candidate the fine-tuned model with DARE masks for `seeds` (default {0, 1, 2}) rescaled by 1/q, built in memory; `drop_outlier = true` leaves out the seed farthest from the mean (with 3 or more seeds). Scores the output change against the fine-tuned model on `texts` (a list of strings) or `data` (a file, as `lopper calibrate` reads it), or `metric(model) -> number` (for example a labeled validation accuracy; `maximize = true` when higher is better). Returns the best q and value, DARE's point and the whole curve. Not available in plugins."),
        .init(name: "lopper.output_change", section: .models, signature: "lopper.output_change(a, b, texts) -> number",
              summary: "How far model `a`'s outputs are from reference model `b`'s on `texts` (as `m:forward` takes them; text is tokenized with `b`'s tokenizer, else `a`'s): for encoders the mean |difference| of the last hidden states, for decoders the mean squared difference of the logits at `b`'s top-5 tokens of every position (the DAREx output change). 0 for identical models."),
        .init(name: "Model:forward", section: .models, signature: "m:forward(input) -> {{hidden=, logits=, pooled=}, ...}",
              summary: "Runs the model on `input`: a string, a list of strings (tokenized with the folder's tokenizer.json, special tokens added), a list of token ids (one sequence) or a list of id lists. Each sequence runs on its own (no padding). One table per sequence: `hidden` the last hidden state F32 {len, hidden} (decoders: after the final norm), `logits` F32 {len, vocab} for decoders or {labels} for classifiers, `pooled` F32 {hidden} for encoders with a pooler; absent fields are nil."),
        .init(name: "Model:perplexity", section: .models, signature: "m:perplexity(texts) -> ppl, tokens",
              summary: "Perplexity of a decoder on `texts` (as `m:forward` takes them): exp of the mean negative log-likelihood of each next token, and the number of tokens predicted. An error for encoders."),
        .init(name: "Model:encode", section: .models, signature: "m:encode(text [, special]) -> {ids}",
              summary: "Token ids of `text` with the folder's tokenizer; `special = false` leaves out the special tokens (default true)."),
        .init(name: "Model:decode", section: .models, signature: "m:decode(ids) -> string",
              summary: "The text of a list of token ids (special tokens skipped)."),
        .init(name: "Model:config", section: .models, signature: "m:config() -> table",
              summary: "The main config fields: `model_type`, `kind` (\"decoder\" or \"encoder\"), `architectures`, `hidden_size`, `num_layers`, `num_heads`, `num_key_value_heads`, `head_dim`, `intermediate_size`, `vocab_size`, `max_position_embeddings`, `sliding_window`, `num_labels`, `norm_eps`, `hidden_act`, `tie_word_embeddings`, and `folder` and `has_tokenizer`."),
    ]

    /// Globals of `lopper repl` only (ReplHelpers.swift), not of scripts or plugins.
    static let repl: [LuaDoc] = [
        .init(name: "layers", section: .repl, signature: "layers(d)",
              summary: "Prints per-layer statistics of a delta (or a checkpoint, or a table `{name = tensor}`): for each layer index (the first all-digit component of a tensor name; names without one are grouped as `-`) the tensor count, parameters, mean, std, mean |x| and max |x|."),
        .init(name: "hist", section: .repl, signature: "hist(t [, bins])",
              summary: "Prints a Unicode histogram of a tensor (`t:hist(bins)`, default 20 bins)."),
        .init(name: "try", section: .repl, signature: "try(plugin, name [, params [, d]]) -> Tensor",
              summary: "Runs a method on one tensor of the loaded pair (the global `delta`, or `base` and `ft`, or the delta `d`) and prints its report: kept fraction, rescale, delta mean/std before and after, relative L2 error, the plugin's figures. `plugin` is a name (`\"darex-q\"`), a `.lua` file, or a plugin table typed at the prompt; `params` like `{rate = 0.99, seed = 1}`. Returns the pruned delta (F32)."),
        .init(name: "reload", section: .repl, signature: "reload()",
              summary: "Forgets the plugin files `try` has loaded, so the next `try` reads your edits; refreshes `plugins` (method name -> file)."),
    ]

    private static func method(_ name: String, _ signature: String, _ summary: String) -> LuaDoc {
        LuaDoc(name: "Tensor:" + name, section: .tensor, signature: signature, summary: summary)
    }

    private static func op(_ name: String, _ signature: String, _ summary: String) -> LuaDoc {
        LuaDoc(name: name, section: .operators, signature: signature, summary: summary)
    }

    public static func entry(named name: String) -> LuaDoc? {
        if let exact = entries.first(where: { $0.name == name }) { return exact }
        let matches = entries.filter { $0.name.hasSuffix("." + name) || $0.name.hasSuffix(":" + name) }
        return matches.first
    }

    // MARK: - Rendering

    /// The text `help(x)` prints for one entry.
    public static func helpText(_ doc: LuaDoc) -> String { doc.signature + "\n  " + doc.summary }

    /// The text `help()` prints: every name with its signature.
    public static func overview() -> String {
        var lines = ["Lopper \(lopperLuaVersion) Lua API. help(x) for one entry (help(lopper.load), help(\"sum\"), help(t))."]
        for section in LuaDoc.Section.allCases {
            lines.append("")
            lines.append(section.rawValue + ":")
            for doc in entries where doc.section == section { lines.append("  " + doc.signature) }
        }
        return lines.joined(separator: "\n")
    }

    /// Docs/lua-api.md.
    public static func markdown() -> String {
        var text = "# Lopper Lua API\n\n"
        text += "<!-- Generated by `lopper docs` from Sources/LopperLua/Bindings/LuaDocs.swift; do not edit. -->\n\n"
        text += "Scripts run with `lopper run script.lua [args]` (all standard libraries, `arg` as in `lua`).\n"
        text += "Plugins run in a sandbox: no `io`, `os`, `package`, `debug`, `require`, `dofile`, `loadfile`,\n"
        text += "`string.dump` or `lopper.load`/`lopper.save`; `load` takes text only; instructions and memory are limited.\n"
        text += "Every tensor operation is one kernel call in Swift; errors name the operation and the shapes.\n"
        for section in LuaDoc.Section.allCases {
            text += "\n## \(section.rawValue)\n"
            for doc in entries where doc.section == section {
                text += "\n### `\(doc.signature)`\n\n\(doc.summary)\n"
            }
        }
        return text + pluginContract
    }

    /// The plugin contract, as plugin authors need it (the hooks are called by the
    /// host, so they are not functions a state registers).
    static let pluginContract = """

    ## Writing a plugin (API 2)

    A plugin is one Lua file that returns a table with one primary hook; `lopper plugin check FILE` validates it
    and runs it on small random tensors, `lopper plugin install FILE` copies it into the user plugin folder.
    Docs/plugins.md is the author's guide.

    ```lua
    return {
      name = "dare", version = "2.0.0", api = 2,
      summary = "Random drop and rescale (Yu et al., 2023)",
      params = { },              -- its own typed parameters; the host adds rate (and, for score, the selection)
      prune = function(delta, ctx)
        local keep = 1 - ctx.params.rate
        return delta * ctx.rng:bernoulli(keep) / keep     -- the pruned delta D', or nil to keep the tensor
      end,
    }
    ```

    Parameter specs have `type` (`number`, also a per-layer schedule `[0.9, 0.99]`; `integer`; `string` with
    optional `choices`; `boolean`), `default`, `min`, `max`, `doc` and `only = { mode = "fixed" }` (setting the
    parameter with another mode is an error). `defaults = { rate = 0.99 }` changes the host's defaults.
    The hooks (exactly one of `prune` and `score`):

    * `prune(delta, ctx) -> D' | nil`: the pruned delta; the host adds the base and rounds to the output dtype.
      `delta` is lazy: elementwise arithmetic on it, `ctx.rng` masks, numbers and tensors such as `ctx.base` is
      computed in one fused pass after the hook returns (`delta * mask / keep` on the DARE kernel), bit for bit
      what eager evaluation gives; reductions, reshapes and other methods compute the values when called.
    * `score(delta, ctx) -> importance`: higher keeps. The host keeps the top `1 - rate` at `granularity`
      (`tensor`, `row`, `nm` with `n`/`m`, `rows`, `cols`) and rescales by `rescale` (`none`, `dare`, `q` with `q`,
      `l1`), or by the optional hook `rescale(ctx, delta, mask) -> number`.

    At `rate = 0` the host keeps the fine-tuned tensor without calling the hook. `ctx` holds `name`, `layer` (nil
    outside the blocks), `layer_count`, `kind` (`weight`, `bias`, `other`), `shape`, `params` (resolved for this
    tensor), `seed`, `output` (`merged` or `delta`), `dtype` (output dtype), `base` and `finetuned` (views of the
    files), `stats` (calibration statistics, when given), `rng` (keyed to (seed, name): `rng:bernoulli(keep
    [, shape])` a lazy mask, `rng:uniform([shape])`, `rng:stream(label)`), `report(key, value)` (a figure in the run
    report; `"rescale"` fills the rescale column) and `note(text)`; a `ctx` kept past its tensor refuses to run.
    Plugins run in the sandbox described above; errors name the plugin file, line and tensor.
    """

    // MARK: - help()

    static let registryKey = "lopper.docnames"

    /// Records that the function on top of the stack (at `index`) is the doc entry `name`.
    static func remember(functionAt index: Int32, as name: String, on stack: LuaStack) {
        let function = lua_absindex(stack.state, index)
        if lua_getfield(stack.state, lopper_registryindex(), registryKey) != LUA_TTABLE {
            stack.pop()
            lopper_newtable(stack.state)
            lua_pushvalue(stack.state, -1)
            lua_setfield(stack.state, lopper_registryindex(), registryKey)
        }
        lua_pushvalue(stack.state, function)
        stack.push(name)
        lua_rawset(stack.state, -3)
        stack.pop()
    }

    /// The doc name recorded for the function at `index`.
    static func rememberedName(at index: Int32, on stack: LuaStack) -> String? {
        let value = lua_absindex(stack.state, index)
        guard lua_getfield(stack.state, lopper_registryindex(), registryKey) == LUA_TTABLE else { stack.pop(); return nil }
        lua_pushvalue(stack.state, value)
        lua_rawget(stack.state, -2)
        defer { stack.pop(2) }
        return stack.stringValue(-1)
    }

    /// Every function name recorded in a state (tests compare it with `entries`).
    public static func registeredNames(in lua: LuaState) -> Set<String> {
        let stack = lua.stack
        var names: Set<String> = []
        guard lua_getfield(stack.state, lopper_registryindex(), registryKey) == LUA_TTABLE else { stack.pop(); return names }
        stack.pushNil()
        while lua_next(stack.state, -2) != 0 {
            if let name = stack.stringValue(-1) { names.insert(name) }
            stack.pop()
        }
        stack.pop()
        return names
    }

    /// `help(x)`: prints the entry for a function, name, tensor, checkpoint or delta.
    static let help: LuaFunction = { stack in
        let text: String
        if stack.isNoneOrNil(1) {
            text = overview()
        } else if let name = rememberedName(at: 1, on: stack), let doc = entry(named: name) {
            text = helpText(doc)
        } else if let name = stack.stringValue(1) {
            guard let doc = entry(named: name) else { throw LuaError("help: no entry named '\(name)'; help() lists them all") }
            text = helpText(doc)
        } else if stack.isTensor(1) {
            text = sectionText(.tensor) + "\n\n" + sectionText(.operators)
        } else if stack.object(1, metatable: ModelFunctions.metatable, as: LuaModel.self) != nil {
            text = sectionText(.models)
        } else if stack.type(1) == LUA_TUSERDATA {
            text = sectionText(.checkpoint)
        } else {
            throw LuaError("help: nothing documented for a \(stack.typeName(1)) value; help() lists everything")
        }
        print(text)
        return 0
    }

    private static func sectionText(_ section: LuaDoc.Section) -> String {
        (["\(section.rawValue):"] + entries.filter { $0.section == section }.map { "  " + $0.signature + "\n      " + $0.summary })
            .joined(separator: "\n")
    }
}
