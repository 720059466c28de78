import CLua
import LopperCore
import LopperIO
import LopperPrune

/// The kernels plugins and scripts build methods from, in the `lopper` module of every
/// state (sandboxed ones too): the fused passes of the hot methods, the host's score
/// selection and rescale, ranks (DELLA), DAREx-q's choice of q, and per-row/column scaling. Options
/// come as tables (`lopper.keep_top(scores, { keep = 0.1, granularity = "row" })`).
enum PruningFunctions {
    static let functions: [(String, LuaFunction)] = [
        ("fused_dare", { stack in
            let function = "fused_dare"
            let base = try stack.tensor(1, function), finetuned = try stack.tensor(2, function)
            let options = try LuaOptions(stack, 3, function, keys: ["keep", "scale", "seed", "name", "output", "dtype"])
            let keep = try options.required("keep", options.number)
            guard keep >= 0, keep <= 1 else { throw LuaError("\(function): keep probability \(keep) is outside [0, 1]") }
            let scale = try options.number("scale") ?? (keep > 0 ? 1 / keep : 1)
            let key = RandomKey(seed: UInt64(bitPattern: Int64(try options.integer("seed") ?? 0)), name: try options.string("name") ?? "")
            let (output, dtype) = try outputOptions(options)
            stack.push(try fusedDare(base: base, finetuned: finetuned, keep: keep, scale: Float(scale), key: key,
                                     output: output, dtype: dtype))
            return 1
        }),
        ("fused_mask", { stack in
            let function = "fused_mask"
            let base = try stack.tensor(1, function), finetuned = try stack.tensor(2, function)
            let mask = try stack.tensor(3, function)
            let options = try LuaOptions(stack, 4, function, keys: ["scale", "output", "dtype"])
            let (output, dtype) = try outputOptions(options)
            stack.push(try fusedMask(base: base, finetuned: finetuned, mask: mask, scale: Float(try options.number("scale") ?? 1),
                                     output: output, dtype: dtype))
            return 1
        }),
        ("keep_top", { stack in
            let function = "keep_top"
            let scores = try stack.tensor(1, function)
            let options = try LuaOptions(stack, 2, function, keys: ["keep", "granularity", "n", "m"])
            let keep = try options.required("keep", options.number)
            stack.push(try keepTop(scores, keep: keep, granularity: try options.choice("granularity", Granularity.self) ?? .tensor,
                                   n: try options.integer("n") ?? 2, m: try options.integer("m") ?? 4))
            return 1
        }),
        ("rank", { stack in
            let function = "rank"
            let scores = try stack.tensor(1, function)
            let options = try LuaOptions(stack, 2, function, keys: ["granularity"])
            switch try options.string("granularity") ?? "tensor" {
            case "tensor": stack.push(try ranks(scores, perRow: false))
            case "row": stack.push(try ranks(scores, perRow: true))
            case let other: throw LuaError("\(function): granularity must be \"tensor\" or \"row\", got \"\(terminalSafe(other))\"")
            }
            return 1
        }),
        ("rescale_factor", { stack in
            let function = "rescale_factor"
            let options = try LuaOptions(stack, 1, function, keys: ["how", "rate", "q", "delta", "mask"])
            let rule = try options.choice("how", RescaleRule.self) ?? .none
            stack.push(try rescaleFactor(rule, rate: try options.number("rate") ?? 0, q: try options.number("q"),
                                         delta: try options.tensor("delta"), mask: try options.tensor("mask")))
            return 1
        }),
        ("darex_q", { stack in
            let function = "darex_q"
            let options = try LuaOptions(stack, 1, function, keys: ["delta", "base", "finetuned", "rate", "mode", "inputs", "eta", "gamma"])
            let p = try options.required("rate", options.number)
            guard p >= 0, p < 1 else { throw LuaError("\(function): rate \(p) must be in [0, 1)") }
            let inputs = try options.tensor("inputs")
            // From base and fine-tuned the delta is never materialised: one pass over the
            // two weight tensors. Or from a delta.
            let sums: [Double], squares: [Double]
            if let base = try options.tensor("base") {
                let finetuned = try options.required("finetuned", options.tensor)
                guard base.rank <= 2 else { throw LuaError("\(function): expects 1-D or 2-D weights, got shape \(base.shape.shapeText)") }
                (sums, squares) = try deltaRowMoments(base: base, finetuned: finetuned, columnWeights: inputs)
            } else {
                let delta = try options.required("delta", options.tensor)
                guard delta.rank <= 2 else { throw LuaError("\(function): expects a 1-D or 2-D delta, got shape \(delta.shape.shapeText)") }
                let contributions = try inputs.map { try scaleCols(delta, $0) } ?? delta
                sums = try rowSums(contributions).floats().map(Double.init)
                squares = try rowNorms(contributions, p: 2).floats().map { Double($0) * Double($0) }
            }
            switch try options.string("mode") ?? "closed_form" {
            case "closed_form":
                stack.push(DARExQ.mseOptimal(p: p, rowSums: sums, rowSquares: squares))
                return 1
            case "analytical":
                let eta = try options.number("eta") ?? 1, gamma = try options.number("gamma") ?? 0.05
                guard eta > 0, gamma > 0, gamma < 1 else { throw LuaError("\(function): eta must be > 0 and gamma in (0, 1)") }
                let (q, rows) = DARExQ.analytical(p: p, eta: eta, gamma: gamma, rowSums: sums, rowSquares: squares)
                stack.push(q)
                stack.push(Tensor(rows.map(Float.init), shape: [rows.count]))
                return 2
            case let mode:
                throw LuaError("\(function): mode must be \"closed_form\" or \"analytical\", got \"\(terminalSafe(mode))\"")
            }
        }),
    ]

    static let methods: [(String, LuaFunction)] = [
        ("scale_rows", { stack in
            stack.push(try scaleRows(try stack.tensor(1, "Tensor:scale_rows"), try stack.tensor(2, "Tensor:scale_rows")))
            return 1
        }),
        ("scale_cols", { stack in
            stack.push(try scaleCols(try stack.tensor(1, "Tensor:scale_cols"), try stack.tensor(2, "Tensor:scale_cols")))
            return 1
        }),
    ]

    /// The `output` ("merged" or "delta") and `dtype` options.
    static func outputOptions(_ options: LuaOptions) throws -> (DeltaOutput, DType?) {
        let output = try options.string("output").map { text -> DeltaOutput in
            guard let parsed = DeltaOutput(rawValue: text), parsed != .adapter else {
                throw LuaError("\(options.function): output must be \"merged\" or \"delta\", got \"\(terminalSafe(text))\"")
            }
            return parsed
        } ?? .merged
        let dtype = try options.string("dtype").map { name -> DType in
            guard let parsed = DType(parsing: name), parsed.isComputable else {
                throw LuaError("\(options.function): dtype must be one of f32, f16, bf16, f64, got \"\(terminalSafe(name))\"")
            }
            return parsed
        }
        return (output, dtype)
    }
}
