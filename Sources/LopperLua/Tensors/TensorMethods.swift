import CLua
import LopperCore

/// The tensor metamethods and methods. Each is one coarse kernel call from
/// LopperCore; nothing loops over elements in Lua. Every name here has an entry in
/// `LuaDocs` (a test checks both directions).
enum TensorMethods {
    static let metamethods: [(String, LuaFunction)] = [
        ("__add", binary("add", .add, { try add($0, $1) }, { try add($0, $1) }, { try add($1, $0) })),
        ("__sub", binary("sub", .sub, { try sub($0, $1) }, { try sub($0, $1) }, { try add(try neg($1), $0) })),
        ("__mul", binary("mul", .mul, { try mul($0, $1) }, { try scale($0, $1) }, { try scale($1, $0) })),
        ("__div", binary("div", .div, { try div($0, $1) }, { try div($0, $1) },
                         { scalar, tensor in try div(try filled(tensor.shape, scalar, .f32), tensor) })),
        ("__unm", { stack in stack.push(try neg(try stack.tensor(1, "unm"))); return 1 }),
        ("__len", { stack in stack.push(try stack.tensor(1, "len").count); return 1 }),
        ("__tostring", { stack in stack.push(TensorFormatting.describe(try stack.tensor(1, "tostring"))); return 1 }),
    ]

    static let methods: [(String, LuaFunction)] = [
        ("shape", { stack in stack.push(integers: try stack.tensor(1, "Tensor:shape").shape); return 1 }),
        ("dtype", { stack in stack.push(try stack.tensor(1, "Tensor:dtype").dtype.name); return 1 }),
        ("numel", { stack in stack.push(try stack.tensor(1, "Tensor:numel").count); return 1 }),
        ("abs", unary("abs") { try abs($0) }),
        ("sign", unary("sign") { try sign($0) }),
        ("sum", reduction("sum") { try sum($0) }),
        ("mean", reduction("mean") { try mean($0) }),
        ("var", { stack in
            let tensor = try stack.tensor(1, "Tensor:var")
            stack.push(try variance(tensor, correction: try stack.optionalInteger(2, "Tensor:var") ?? 0))
            return 1
        }),
        ("std", { stack in
            let tensor = try stack.tensor(1, "Tensor:std")
            stack.push(try variance(tensor, correction: try stack.optionalInteger(2, "Tensor:std") ?? 0).squareRoot())
            return 1
        }),
        ("norm", { stack in
            let tensor = try stack.tensor(1, "Tensor:norm")
            let p = try normOrder(stack, 2, "Tensor:norm")
            switch try stack.optionalInteger(3, "Tensor:norm") {
            case nil: stack.push(try norm(tensor, p: p))
            case 1: stack.push(try colNorms(tensor, p: p))
            case 2: stack.push(try rowNorms(tensor, p: p))
            case let dim?: throw LuaError("norm: dim must be 1 (over rows, one value per column) or 2 (over columns, one per row), got \(dim)")
            }
            return 1
        }),
        ("min", reduction("min") { Double(try min($0)) }),
        ("max", reduction("max") { Double(try max($0)) }),
        ("count_nonzero", { stack in stack.push(try countNonZero(try stack.tensor(1, "Tensor:count_nonzero"))); return 1 }),
        ("kth", { stack in
            let tensor = try stack.tensor(1, "Tensor:kth")
            stack.push(try kthLargest(tensor, try stack.integer(2, "Tensor:kth")))
            return 1
        }),
        ("topk_mask", { stack in
            let tensor = try stack.tensor(1, "Tensor:topk_mask")
            let k = try stack.integer(2, "Tensor:topk_mask")
            let perRow = try stack.optionalString(3, "Tensor:topk_mask")
            switch perRow {
            case nil: stack.push(try topKMask(tensor, k))
            case "row"?: stack.push(try topKMaskPerRow(tensor, k))
            case let other?: throw LuaError("topk_mask: the third argument must be \"row\" (k per row), got \"\(other)\"")
            }
            return 1
        }),
        ("nm_mask", { stack in
            let tensor = try stack.tensor(1, "Tensor:nm_mask")
            stack.push(try nmMask(tensor, n: try stack.integer(2, "Tensor:nm_mask"), m: try stack.integer(3, "Tensor:nm_mask")))
            return 1
        }),
        ("bernoulli", { stack in
            let tensor = try stack.tensor(1, "Tensor:bernoulli")
            let keep = try stack.number(2, "Tensor:bernoulli")
            let key = try randomKey(stack, 3, "Tensor:bernoulli")
            guard keep >= 0, keep <= 1 else { throw LuaError("bernoulli: keep probability \(keep) is outside [0, 1]") }
            stack.push(try bernoulliMask(tensor.shape, keep: keep, key: key))
            return 1
        }),
        ("where", { stack in
            let tensor = try stack.tensor(1, "Tensor:where")
            let mask = try stack.tensor(2, "Tensor:where")
            if stack.type(3) == LUA_TNUMBER {
                // select(mask, a, s) keeps a where the mask is set: exactly `where`.
                stack.push(try select(mask, tensor, Float(try stack.number(3, "Tensor:where"))))
            } else {
                stack.push(try select(mask, tensor, try stack.tensor(3, "Tensor:where")))
            }
            return 1
        }),
        ("to", { stack in
            let tensor = try stack.tensor(1, "Tensor:to")
            let dtype = try stack.dtype(2, "Tensor:to")
            stack.push(dtype == tensor.dtype ? tensor : try tensor.converted(to: dtype))
            return 1
        }),
        ("clone", { stack in stack.push(try stack.tensor(1, "Tensor:clone").clone()); return 1 }),
        ("reshape", { stack in
            let tensor = try stack.tensor(1, "Tensor:reshape")
            stack.push(try tensor.reshaped(try stack.shape(2, "Tensor:reshape")))
            return 1
        }),
        ("stats", { stack in
            let tensor = try stack.tensor(1, "Tensor:stats")
            let result = try stats(tensor)
            lua_createtable(stack.state, 0, 7)
            let table = stack.top
            stack.push(result.count); stack.setField("count", in: table)
            stack.push(result.mean); stack.setField("mean", in: table)
            stack.push(result.std); stack.setField("std", in: table)
            stack.push(result.min); stack.setField("min", in: table)
            stack.push(result.max); stack.setField("max", in: table)
            stack.push(result.nonZero); stack.setField("nonzero", in: table)
            stack.push(result.nanCount); stack.setField("nan", in: table)
            return 1
        }),
        ("hist", { stack in
            let tensor = try stack.tensor(1, "Tensor:hist")
            let bins = try stack.optionalInteger(2, "Tensor:hist") ?? 20
            guard (1...200).contains(bins) else { throw LuaError("hist: bins must be between 1 and 200, got \(bins)") }
            stack.push(TensorFormatting.histogramText(try histogram(tensor, bins: bins)))
            return 1
        }),
        ("row_sums", unary("row_sums") { try rowSums($0) }),
        ("col_sums", unary("col_sums") { try colSums($0) }),
        ("row_norms", { stack in
            let tensor = try stack.tensor(1, "Tensor:row_norms")
            stack.push(try rowNorms(tensor, p: try normOrder(stack, 2, "Tensor:row_norms")))
            return 1
        }),
        ("col_norms", { stack in
            let tensor = try stack.tensor(1, "Tensor:col_norms")
            stack.push(try colNorms(tensor, p: try normOrder(stack, 2, "Tensor:col_norms")))
            return 1
        }),
        ("gt", comparison("gt", { try greater($0, $1) }, { try greater($0, $1) })),
        ("ge", comparison("ge", { try greaterEqual($0, $1) }, { try greaterEqual($0, $1) })),
        ("lt", comparison("lt", { try less($0, $1) }, { try less($0, $1) })),
        ("le", comparison("le", { try lessEqual($0, $1) }, { try lessEqual($0, $1) })),
        ("eq", comparison("eq", { try equal($0, $1) }, { try equal($0, $1) })),
        ("ne", comparison("ne", { try notEqual($0, $1) }, { try notEqual($0, $1) })),
        ("totable", { stack in
            let tensor = try stack.tensor(1, "Tensor:totable")
            guard tensor.count <= 1 << 20 else {
                throw LuaError("totable: \(tensor.shape.shapeText) has \(tensor.count) elements; totable is for small tensors (at most 1048576)")
            }
            let values = tensor.floats()
            lua_createtable(stack.state, Int32(values.count), 0)
            for (position, value) in values.enumerated() {
                stack.push(value)
                lua_rawseti(stack.state, -2, lua_Integer(position + 1))
            }
            return 1
        }),
    ]

    // MARK: - Builders

    /// `a op b` where either side may be a number (Lua passes operands in order); with
    /// a lazy operand the result is lazy too, with the same arithmetic.
    private static func binary(_ name: String, _ operation: LazyTensor.BinaryOperation,
                               _ both: @escaping (Tensor, Tensor) throws -> Tensor,
                               _ tensorScalar: @escaping (Tensor, Float) throws -> Tensor,
                               _ scalarTensor: @escaping (Float, Tensor) throws -> Tensor) -> LuaFunction {
        return { stack in
            if LazyUserdata.lazy(at: 1, on: stack) != nil || LazyUserdata.lazy(at: 2, on: stack) != nil {
                return try LazyUserdata.binary(operation, name, stack)
            }
            if let left = TensorUserdata.tensor(at: 1, on: stack) {
                if let right = TensorUserdata.tensor(at: 2, on: stack) {
                    stack.push(try both(left, right))
                } else {
                    stack.push(try tensorScalar(left, Float(try operand(stack, 2, name))))
                }
            } else {
                let right = try stack.tensor(2, name)
                stack.push(try scalarTensor(Float(try operand(stack, 1, name)), right))
            }
            return 1
        }
    }

    private static func operand(_ stack: LuaStack, _ index: Int32, _ name: String) throws -> Double {
        guard stack.type(index) == LUA_TNUMBER else {
            throw LuaError("\(name): cannot combine a tensor with a \(stack.typeName(index)) value")
        }
        return try stack.number(index, name)
    }

    private static func unary(_ name: String, _ body: @escaping (Tensor) throws -> Tensor) -> LuaFunction {
        return { stack in stack.push(try body(try stack.tensor(1, "Tensor:" + name))); return 1 }
    }

    private static func reduction(_ name: String, _ body: @escaping (Tensor) throws -> Double) -> LuaFunction {
        return { stack in stack.push(try body(try stack.tensor(1, "Tensor:" + name))); return 1 }
    }

    private static func comparison(_ name: String,
                                   _ both: @escaping (Tensor, Tensor) throws -> Tensor,
                                   _ scalar: @escaping (Tensor, Float) throws -> Tensor) -> LuaFunction {
        return { stack in
            let left = try stack.tensor(1, "Tensor:" + name)
            if stack.type(2) == LUA_TNUMBER {
                stack.push(try scalar(left, Float(try stack.number(2, "Tensor:" + name))))
            } else {
                stack.push(try both(left, try stack.tensor(2, "Tensor:" + name)))
            }
            return 1
        }
    }

    /// p of a norm: 1, 2, math.huge or "inf"; default 2.
    static func normOrder(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> Double {
        if stack.isNoneOrNil(index) { return 2 }
        if stack.stringValue(index) == "inf" { return .infinity }
        let p = try stack.number(index, function)
        guard p == 1 || p == 2 || p == .infinity else {
            throw LuaError("\(function.split(separator: ":").last ?? ""): p must be 1, 2 or \"inf\", got \(p)")
        }
        return p
    }

    /// A generator key from (seed, name) arguments; the name defaults to "".
    static func randomKey(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> RandomKey {
        let seed = try stack.integer(index, function)
        let name = try stack.optionalString(index + 1, function) ?? ""
        return RandomKey(seed: UInt64(bitPattern: Int64(seed)), name: name)
    }

    /// A new tensor of `shape` with every element `value`.
    static func filled(_ shape: [Int], _ value: Float, _ dtype: DType) throws -> Tensor {
        let tensor = try Tensor(zeros: shape, dtype: .f32)
        if value != 0 {
            let pointer = tensor.data.assumingMemoryBound(to: Float.self)
            Parallel.forEachChunk(count: tensor.count) { range in
                (pointer + range.lowerBound).update(repeating: value, count: range.count)
            }
        }
        return dtype == .f32 ? tensor : try tensor.converted(to: dtype)
    }
}
