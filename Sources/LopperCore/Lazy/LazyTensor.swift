/// An elementwise expression over tensors of one shape, built now and computed later,
/// in one fused pass (the MLX way): `delta * mask / keep` reads the two checkpoints
/// once and writes one tensor, with no whole-tensor intermediate.
///
/// Every node means exactly what the eager kernels compute: f32 arithmetic in the same
/// order, a BOOL mask multiplies as `mask ? x : +0` (`mul` with a BOOL operand), so a
/// fused evaluation is bit-identical to evaluating the same expression step by step.
/// Reductions and shape changes need values: they call `evaluate()` first.
public final class LazyTensor: @unchecked Sendable {
    public indirect enum Node {
        /// A tensor: computable, or BOOL (a mask).
        case tensor(Tensor)
        /// `finetuned - base`, widened to f32.
        case delta(base: Tensor, finetuned: Tensor)
        /// A Bernoulli(keep) mask drawn exactly as `bernoulliMask(shape, keep:, key:)`.
        case bernoulli(keep: Double, key: RandomKey)
        case scalar(Float)
        case unary(UnaryOperation, Node)
        case binary(BinaryOperation, Node, Node)
    }

    public enum UnaryOperation: Sendable { case neg, abs, sign }
    /// `masked`: the left operand where the right one (a mask) is set, else +0.
    public enum BinaryOperation: Sendable { case add, sub, mul, div, masked }

    public let shape: [Int]
    public let node: Node

    init(shape: [Int], node: Node) {
        self.shape = shape
        self.node = node
    }

    public var count: Int { shape.reduce(1, *) }

    /// The delta of two tensors of one shape (nothing is read yet).
    public static func delta(base: Tensor, finetuned: Tensor) throws -> LazyTensor {
        guard base.shape == finetuned.shape else { throw TensorError.shapeMismatch("delta", finetuned.shape, base.shape) }
        try requireComputable("delta", base.dtype, finetuned.dtype)
        return LazyTensor(shape: base.shape, node: .delta(base: base, finetuned: finetuned))
    }

    /// A Bernoulli(keep) mask of `shape` (nothing is drawn yet).
    public static func bernoulli(_ shape: [Int], keep: Double, key: RandomKey) throws -> LazyTensor {
        _ = try KeepRule(keep)
        MaskDrawLog.record(keep: keep, key: key, count: try Tensor.elementCount(shape))
        return LazyTensor(shape: shape, node: .bernoulli(keep: keep, key: key))
    }

    /// Whether the expression is a mask (a BOOL value), not a number.
    public var isMask: Bool { node.isMask }
}

/// What an elementwise operation can combine: an expression, a tensor or a number.
public enum LazyOperand {
    case lazy(LazyTensor)
    case tensor(Tensor)
    case scalar(Float)

    var node: LazyTensor.Node {
        switch self {
        case .lazy(let value): return value.node
        case .tensor(let tensor): return .tensor(tensor)
        case .scalar(let value): return .scalar(value)
        }
    }

    var shape: [Int]? {
        switch self {
        case .lazy(let value): return value.shape
        case .tensor(let tensor): return tensor.shape
        case .scalar: return nil
        }
    }
}

extension LazyTensor {
    /// `a op b` as an expression; the same checks as the eager kernels, made now.
    /// A multiplication with a mask becomes `masked`; masks take part in nothing else.
    public static func binary(_ operation: BinaryOperation, _ a: LazyOperand, _ b: LazyOperand) throws -> LazyTensor {
        let name = "\(operation)"
        guard let shape = a.shape ?? b.shape else { throw TensorError.invalid("\(name): needs a tensor operand") }
        if let other = b.shape, let first = a.shape, first != other { throw TensorError.shapeMismatch(name, first, other) }
        let x = a.node, y = b.node
        for node in [x, y] {
            if case .tensor(let tensor) = node, !tensor.dtype.isComputable, tensor.dtype != .bool {
                throw TensorError.unsupportedDType(name, tensor.dtype)
            }
        }
        switch (operation, x.isMask, y.isMask) {
        case (.mul, false, true): return LazyTensor(shape: shape, node: .binary(.masked, x, y))
        case (.mul, true, false): return LazyTensor(shape: shape, node: .binary(.masked, y, x))
        case (.masked, false, true): return LazyTensor(shape: shape, node: .binary(.masked, x, y))
        case (_, false, false) where operation != .masked: return LazyTensor(shape: shape, node: .binary(operation, x, y))
        default: throw TensorError.unsupportedDType(name, .bool)
        }
    }

    public static func unary(_ operation: UnaryOperation, _ a: LazyTensor) throws -> LazyTensor {
        guard !a.isMask else { throw TensorError.unsupportedDType("\(operation)", .bool) }
        return LazyTensor(shape: a.shape, node: .unary(operation, a.node))
    }
}

extension LazyTensor.Node {
    var isMask: Bool {
        switch self {
        case .bernoulli: return true
        case .tensor(let tensor): return tensor.dtype == .bool
        default: return false
        }
    }
}
