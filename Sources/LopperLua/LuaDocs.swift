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
    public static let entries: [LuaDoc] = globals + module + tensor + operators + repl

    static let globals: [LuaDoc] = [
        .init(name: "help", section: .globals, signature: "help([x])",
              summary: "Prints the documentation of `x`: a function, a tensor, a checkpoint or a name such as `\"lopper.load\"` or `\"sum\"`. Without an argument, lists everything."),
    ]

    static let module: [LuaDoc] = [
        .init(name: "lopper.version", section: .module, signature: "lopper.version",
              summary: "The version of lopper, a string such as `\"0.1.0\"`."),
        .init(name: "lopper.delta", section: .module, signature: "lopper.delta(base, finetuned) -> Tensor",
              summary: "The difference `finetuned - base` of two tensors of the same shape, as F32 (one fused pass)."),
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
        op("__add", "a + b", "Elementwise sum (F32); either side may be a number. Shapes must match."),
        op("__sub", "a - b", "Elementwise difference (F32); either side may be a number."),
        op("__mul", "a * b", "Elementwise product (F32); with a number, scaling."),
        op("__div", "a / b", "Elementwise quotient (F32); either side may be a number."),
        op("__unm", "-a", "Elementwise negation (F32)."),
        op("__len", "#a", "The number of elements."),
        op("__tostring", "tostring(a)", "Shape, dtype and mean/std/min/max; tensors of up to 16 elements print in full."),
    ]

    // Added with the checkpoint bindings (LopperIO): load, save, Checkpoint and Delta.
    static let checkpoint: [LuaDoc] = [
        .init(name: "lopper.load", section: .checkpoint, signature: "lopper.load(path) -> Checkpoint",
              summary: "Opens a `.safetensors` file or a checkpoint folder lazily. `ck[name]` is a tensor view of the mapped file (no copy); `ck:names()` and `pairs(ck)` go in file order. Not available in plugins."),
        .init(name: "lopper.delta", section: .checkpoint, signature: "lopper.delta(base, finetuned) -> Delta | Tensor",
              summary: "With two checkpoints (or paths): a lazy delta whose `d[name]` computes `finetuned[name] - base[name]` (F32) on access. With two tensors: that difference at once."),
        .init(name: "lopper.save", section: .checkpoint, signature: "lopper.save(tensors, path [, {shard_size=bytes, metadata={...}}])",
              summary: "Writes tensors to `path` as safetensors: `tensors` is a table `{name = tensor}` (written in name order), a Checkpoint or Delta (file order), or an iterator function returning `name, tensor` until nil. With `shard_size` writes a sharded checkpoint folder. Not available in plugins."),

        .init(name: "Checkpoint:names", section: .checkpoint, signature: "ck:names() -> {names}",
              summary: "Tensor names in file order (also `pairs(ck)` gives `name, tensor` in that order; `#ck` counts them)."),
        .init(name: "Checkpoint:info", section: .checkpoint, signature: "ck:info(name) -> {dtype, shape, bytes}",
              summary: "The header entry of a tensor without reading its data."),
        .init(name: "Checkpoint:metadata", section: .checkpoint, signature: "ck:metadata() -> table",
              summary: "The `__metadata__` strings of the file (of the first shard for a folder)."),
        .init(name: "Checkpoint:tensor", section: .checkpoint, signature: "ck:tensor(name) -> Tensor",
              summary: "Like `ck[name]`, but an unknown name is an error instead of nil."),
        .init(name: "Delta:names", section: .checkpoint, signature: "d:names() -> {names}",
              summary: "Names of the fine-tuned checkpoint that also exist in the base, in file order (`pairs(d)` iterates them)."),
        .init(name: "Delta:tensor", section: .checkpoint, signature: "d:tensor(name) -> Tensor",
              summary: "The delta `finetuned[name] - base[name]` as F32 (also `d[name]`, which gives nil for unknown names)."),
        .init(name: "Delta:base", section: .checkpoint, signature: "d:base(name) -> Tensor",
              summary: "The base tensor of `name` (a view of the file)."),
        .init(name: "Delta:finetuned", section: .checkpoint, signature: "d:finetuned(name) -> Tensor",
              summary: "The fine-tuned tensor of `name` (a view of the file)."),
    ]

    /// Globals of `lopper repl` only (ReplHelpers.swift), not of scripts or plugins.
    static let repl: [LuaDoc] = [
        .init(name: "layers", section: .repl, signature: "layers(d)",
              summary: "Prints per-layer statistics of a delta (or a checkpoint, or a table `{name = tensor}`): for each layer index (the first all-digit component of a tensor name; names without one are grouped as `-`) the tensor count, parameters, mean, std, mean |x| and max |x|."),
        .init(name: "hist", section: .repl, signature: "hist(t [, bins])",
              summary: "Prints a Unicode histogram of a tensor (`t:hist(bins)`, default 20 bins)."),
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
        text += "<!-- Generated by `lopper docs` from Sources/LopperLua/LuaDocs.swift; do not edit. -->\n\n"
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
        return text
    }

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
