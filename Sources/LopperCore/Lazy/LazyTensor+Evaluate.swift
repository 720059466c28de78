/// Evaluating an expression: block by block (L1-sized f32 blocks, chunks in parallel),
/// the tree compiled to a postfix program over a small stack of blocks. The DARE form
/// `delta * mask [* s | / s]` runs as the hand-fused `fusedDare` kernel instead, which
/// computes the same operations in the same order.
extension LazyTensor {
    /// The values: BOOL for a mask, F32 otherwise.
    public func evaluate() throws -> Tensor {
        switch node {
        case .bernoulli(let keep, let key): return try bernoulliMask(shape, keep: keep, key: key)
        case .tensor(let tensor) where tensor.dtype == .bool: return tensor
        case .delta(let base, let finetuned): return try LopperCore.delta(finetuned, base)
        // |delta|, the magnitude score: one elementwise kernel instead of the block program.
        case .unary(.abs, .delta(let base, let finetuned)): return try absDelta(finetuned, base)
        default: return try run(plus: nil, dtype: .f32)
        }
    }

    /// The tensor a pruning method writes from this pruned delta `D'`: `base + D'`
    /// (merged) or `D'`, rounded to `dtype`; the same bits as `add(base, evaluate(),
    /// dtype:)` or `evaluate().converted(to:)`.
    public func finish(base: Tensor, output: DeltaOutput, dtype: DType) throws -> Tensor {
        try finish(base: base, output: output, dtype: dtype, measuredAgainst: nil).output
    }

    /// `finish`, and where the DARE kernel runs on `finetuned` itself, the `compareDelta`
    /// figures of `finetuned - base` against the output, measured in the same pass.
    public func finish(base: Tensor, output: DeltaOutput, dtype: DType,
                       measuredAgainst finetuned: Tensor?) throws -> (output: Tensor, comparison: DeltaComparison?) {
        guard base.shape == shape else { throw TensorError.shapeMismatch("finish", shape, base.shape) }
        guard !isMask else { throw TensorError.unsupportedDType("finish", .bool) }
        if let form = dareForm(base: base) {
            if let finetuned, form.finetuned === finetuned {
                let (result, comparison) = try fusedDareMeasured(base: base, finetuned: finetuned, keep: form.keep,
                                                                 rescale: form.rescale, key: form.key, output: output, dtype: dtype)
                return (result, comparison)
            }
            return (try fusedDare(base: base, finetuned: form.finetuned, keep: form.keep, rescale: form.rescale,
                                  key: form.key, output: output, dtype: dtype), nil)
        }
        return (try run(plus: output == .merged ? base : nil, dtype: dtype), nil)
    }

    /// The factor kept entries are multiplied by when `finish(base:...)` takes the
    /// hand-fused DARE kernel (for the run report), nil otherwise.
    public func dareRescale(base: Tensor) -> Double? {
        switch dareForm(base: base)?.rescale {
        case .times(let s)?: return Double(s)
        case .dividedBy(let s)?: return 1 / Double(s)
        case nil: return nil
        }
    }

    // MARK: - The DARE form

    private struct DAREForm {
        var finetuned: Tensor
        var keep: Double
        var key: RandomKey
        var rescale: Rescale
    }

    /// `masked(delta, bernoulli)`, optionally rescaled by a scalar before the mask (any
    /// finite factor) or after it (a positive one, where `+0 * s` stays +0 as the
    /// kernel's dropped lanes are).
    private func dareForm(base: Tensor) -> DAREForm? {
        func rescaled(_ node: Node, positive: Bool) -> (Node, Rescale)? {
            func usable(_ s: Float) -> Bool { s.isFinite && (!positive || s > 0) }
            switch node {
            case .binary(.mul, let inner, .scalar(let s)) where usable(s): return (inner, .times(s))
            case .binary(.mul, .scalar(let s), let inner) where usable(s): return (inner, .times(s))
            case .binary(.div, let inner, .scalar(let s)) where usable(s): return (inner, .dividedBy(s))
            default: return nil
            }
        }
        func masked(_ node: Node) -> (Node, Double, RandomKey)? {
            guard case .binary(.masked, let inner, .bernoulli(let keep, let key)) = node else { return nil }
            return (inner, keep, key)
        }
        func delta(_ node: Node) -> Tensor? {
            guard case .delta(let b, let f) = node, b === base else { return nil }
            return f
        }
        var rescale = Rescale.times(1)
        var outer = node
        if let (inner, factor) = rescaled(node, positive: true) { outer = inner; rescale = factor }
        guard let (inside, keep, key) = masked(outer) else { return nil }
        if let finetuned = delta(inside) { return DAREForm(finetuned: finetuned, keep: keep, key: key, rescale: rescale) }
        guard case .times(1) = rescale, let (inner, factor) = rescaled(inside, positive: false),
              let finetuned = delta(inner) else { return nil }
        return DAREForm(finetuned: finetuned, keep: keep, key: key, rescale: factor)
    }

    // MARK: - The block program

    private enum Step {
        case load(Tensor)
        case delta(Tensor, Tensor)
        case mask(KeepRule, RandomKey)
        case constant(Float)
        case unary(UnaryOperation)
        case binary(BinaryOperation)
    }

    /// Appends `node`'s program to `steps`; returns the stack depth it needs.
    private static func compile(_ node: Node, into steps: inout [Step]) throws -> Int {
        switch node {
        case .tensor(let tensor): steps.append(.load(tensor)); return 1
        case .delta(let base, let finetuned): steps.append(.delta(base, finetuned)); return 1
        case .bernoulli(let keep, let key): steps.append(.mask(try KeepRule(keep), key)); return 1
        case .scalar(let value): steps.append(.constant(value)); return 1
        case .unary(let operation, let inner):
            let depth = try compile(inner, into: &steps)
            steps.append(.unary(operation))
            return depth
        case .binary(let operation, let a, let b):
            let left = try compile(a, into: &steps)
            let right = try compile(b, into: &steps)
            steps.append(.binary(operation))
            return Swift.max(left, right + 1)
        }
    }

    /// Runs the program over every block, adds `plus` when given, and stores as `dtype`.
    private func run(plus: Tensor?, dtype: DType) throws -> Tensor {
        var steps: [Step] = []
        let depth = try Self.compile(node, into: &steps)
        try requireComputable("evaluate", dtype)
        if let plus { try requireComputable("evaluate", plus.dtype) }
        let result = try Tensor(uninitialized: shape, dtype: dtype)
        let target = result.data, outputSize = dtype.byteSize
        // One block per stack level, one for `plus`, and the mask bytes.
        forEachBlock(count: count, buffers: depth + 2) { start, length, scratch in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: kernelBlock) { bytes in
                let maskBytes = bytes.baseAddress!
                var top = 0
                func block(_ level: Int) -> UnsafeMutablePointer<Float> { scratch + level * kernelBlock }
                for step in steps {
                    switch step {
                    case .load(let tensor):
                        loadFloats(tensor.data + start * tensor.dtype.byteSize, dtype: tensor.dtype, into: block(top), count: length)
                        top += 1
                    case .delta(let base, let finetuned):
                        let d = block(top), b = block(depth + 1)
                        loadFloats(finetuned.data + start * finetuned.dtype.byteSize, dtype: finetuned.dtype, into: d, count: length)
                        loadFloats(base.data + start * base.dtype.byteSize, dtype: base.dtype, into: b, count: length)
                        for i in 0..<length { d[i] = d[i] - b[i] }
                        top += 1
                    case .mask(let rule, let key):
                        rule.fill(start..<start + length, key: key, into: maskBytes - start)
                        let m = block(top)
                        for i in 0..<length { m[i] = maskBytes[i] != 0 ? 1 : 0 }
                        top += 1
                    case .constant(let value):
                        block(top).update(repeating: value, count: length)
                        top += 1
                    case .unary(let operation):
                        Self.apply(operation, block(top - 1), length)
                    case .binary(let operation):
                        Self.apply(operation, block(top - 2), block(top - 1), length)
                        top -= 1
                    }
                }
                let values = block(0)
                if let plus {
                    let b = block(depth + 1)
                    loadFloats(plus.data + start * plus.dtype.byteSize, dtype: plus.dtype, into: b, count: length)
                    for i in 0..<length { values[i] = b[i] + values[i] }
                }
                storeFloats(values, into: target + start * outputSize, dtype: dtype, count: length)
            }
        }
        return result
    }

    /// `x = op(x)`, as the eager kernels of the same name compute it.
    private static func apply(_ operation: UnaryOperation, _ x: UnsafeMutablePointer<Float>, _ count: Int) {
        switch operation {
        case .neg: for i in 0..<count { x[i] = Float(bitPattern: x[i].bitPattern ^ 0x8000_0000) }
        case .abs: for i in 0..<count { x[i] = Float(bitPattern: x[i].bitPattern & 0x7FFF_FFFF) }
        case .sign: for i in 0..<count { let v = x[i]; x[i] = v > 0 ? 1 : v < 0 ? -1 : (v != v ? v : 0) }
        }
    }

    /// `x = x op y`, as the eager kernels compute it (`masked`: `mul` with a BOOL mask).
    private static func apply(_ operation: BinaryOperation, _ x: UnsafeMutablePointer<Float>,
                              _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        switch operation {
        case .add: for i in 0..<count { x[i] = x[i] + y[i] }
        case .sub: for i in 0..<count { x[i] = x[i] - y[i] }
        case .mul: for i in 0..<count { x[i] = x[i] * y[i] }
        case .div: for i in 0..<count { x[i] = x[i] / y[i] }
        case .masked:
            // In lanes: the scalar select keeps a NaN test per element and does not vectorize.
            var i = 0
            while i &+ 16 <= count {
                let kept = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self) .!= 0
                let value = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(x + i).storeBytes(of: SIMD16<Float>().replacing(with: value, where: kept), as: SIMD16<Float>.self)
                i &+= 16
            }
            for i in i..<count { x[i] = y[i] != 0 ? x[i] : 0 }
        }
    }
}
