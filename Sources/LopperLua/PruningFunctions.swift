import CLua
import LopperCore
import LopperPrune

/// The kernels plugins build methods from, in the `lopper` module of every state
/// (sandboxed ones too): the fused passes of the hot methods, DAREx-q's choice of q,
/// and per-row/column scaling. The reference plugins use exactly these.
enum PruningFunctions {
    static let functions: [(String, LuaFunction)] = [
        ("fused_dare", { stack in
            let base = try stack.tensor(1, "fused_dare"), finetuned = try stack.tensor(2, "fused_dare")
            let keep = try stack.number(3, "fused_dare"), scale = try stack.number(4, "fused_dare")
            let key = try TensorMethods.randomKey(stack, 5, "fused_dare")
            guard keep >= 0, keep <= 1 else { throw LuaError("fused_dare: keep probability \(keep) is outside [0, 1]") }
            let (output, dtype) = try outputOptions(stack, 7, "fused_dare")
            stack.push(try dareFused(base: base, finetuned: finetuned, keep: keep, scale: Float(scale), key: key,
                                     output: output, dtype: dtype))
            return 1
        }),
        ("fused_mask", { stack in
            let base = try stack.tensor(1, "fused_mask"), finetuned = try stack.tensor(2, "fused_mask")
            let mask = try stack.tensor(3, "fused_mask"), scale = try stack.number(4, "fused_mask")
            let (output, dtype) = try outputOptions(stack, 5, "fused_mask")
            stack.push(try maskedRescaleAdd(base: base, finetuned: finetuned, mask: mask, scale: Float(scale),
                                            output: output, dtype: dtype))
            return 1
        }),
        ("darex_q", { stack in
            let first = try stack.tensor(1, "darex_q")
            let p = try stack.number(2, "darex_q")
            guard p >= 0, p < 1 else { throw LuaError("darex_q: drop rate \(p) must be in [0, 1)") }
            guard first.rank <= 2 else { throw LuaError("darex_q: expects a 1-D or 2-D delta, got shape \(first.shape.shapeText)") }
            let mode = try stack.optionalField(3, "mode", "darex_q")?.string ?? "closed_form"
            let eta = try stack.optionalField(3, "eta", "darex_q")?.number ?? 1
            let gamma = try stack.optionalField(3, "gamma", "darex_q")?.number ?? 0.05
            var inputs: Tensor?
            if let value = try stack.optionalField(3, "inputs", "darex_q") {
                guard let x = value.tensor else { throw LuaError("darex_q: inputs must be a tensor of per-column input means") }
                inputs = x
            }
            // With `finetuned`, the first argument is the base and the delta is never
            // materialised: one pass over the two weight tensors.
            let sums: [Double], squares: [Double]
            if let value = try stack.optionalField(3, "finetuned", "darex_q") {
                guard let finetuned = value.tensor else { throw LuaError("darex_q: finetuned must be a tensor") }
                (sums, squares) = try deltaRowMoments(base: first, finetuned: finetuned, columnWeights: inputs)
            } else {
                let contributions = try inputs.map { try scaleCols(first, $0) } ?? first
                sums = try rowSums(contributions).floats().map(Double.init)
                squares = try rowNorms(contributions, p: 2).floats().map { Double($0) * Double($0) }
            }
            switch mode {
            case "closed_form":
                stack.push(DARExQ.mseOptimal(p: p, rowSums: sums, rowSquares: squares))
                return 1
            case "analytical":
                guard eta > 0, gamma > 0, gamma < 1 else { throw LuaError("darex_q: eta must be > 0 and gamma in (0, 1)") }
                let (q, rows) = DARExQ.analytical(p: p, eta: eta, gamma: gamma, rowSums: sums, rowSquares: squares)
                stack.push(q)
                stack.push(Tensor(rows.map(Float.init), shape: [rows.count]))
                return 2
            default:
                throw LuaError("darex_q: mode must be \"closed_form\" or \"analytical\", got \"\(mode)\"")
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

    /// `{output = "merged"|"delta", dtype = "bf16"}` at `index` (optional).
    static func outputOptions(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> (DeltaOutput, DType?) {
        var output = DeltaOutput.merged
        if let text = try stack.optionalField(index, "output", function)?.string {
            guard let parsed = DeltaOutput(rawValue: text) else {
                throw LuaError("\(function): output must be \"merged\" or \"delta\", got \"\(text)\"")
            }
            output = parsed
        }
        var dtype: DType?
        if let name = try stack.optionalField(index, "dtype", function)?.string {
            guard let parsed = DType(parsing: name), parsed.isComputable else {
                throw LuaError("\(function): dtype must be one of f32, f16, bf16, f64, got \"\(name)\"")
            }
            dtype = parsed
        }
        return (output, dtype)
    }
}

extension LuaStack {
    /// Field `key` of an optional options table at `index`: nil when the table or the
    /// field is absent; an error when `index` holds something other than a table.
    func optionalField(_ index: Int32, _ key: String, _ function: String) throws -> LuaValue? {
        if isNoneOrNil(index) { return nil }
        guard type(index) == LUA_TTABLE else {
            throw LuaError.badArgument(index, function, "options table", got: typeName(index))
        }
        field(key, of: index)
        defer { pop() }
        switch type(-1) {
        case LUA_TNIL: return nil
        case LUA_TNUMBER: return .number(try number(-1, function))
        case LUA_TSTRING: return .string(stringValue(-1) ?? "")
        case LUA_TBOOLEAN: return .boolean(boolean(-1))
        default:
            if let tensor = TensorUserdata.tensor(at: -1, on: self) { return .tensor(tensor) }
            return .other(typeName(-1))
        }
    }
}
