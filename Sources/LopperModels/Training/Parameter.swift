import LopperCore

/// A trainable tensor: F32 master values and the gradient accumulated by `backward`,
/// under its checkpoint name.
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) throws {
        self.name = name
        self.value = value.dtype == .f32 && value.isWritable ? try value.clone() : try value.converted(to: .f32)
        grad = try Tensor(zeros: value.shape)
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    var values: UnsafeMutablePointer<Float> { floats(value) }
    var grads: UnsafeMutablePointer<Float> { floats(grad) }

    func zeroGrad() { grads.update(repeating: 0, count: count) }
}

/// Every parameter of a model, in checkpoint order.
public struct ParameterSet {
    public private(set) var all: [Parameter] = []
    private var index: [String: Int] = [:]

    public init() {}

    mutating func add(_ name: String, _ value: Tensor) throws -> Parameter {
        let p = try Parameter(name: name, value: value)
        index[name] = all.count
        all.append(p)
        return p
    }

    /// Adds checkpoint tensor `name`, which must exist with `shape` and a float dtype.
    mutating func load(_ name: String, _ shape: [Int], from tensor: (String) throws -> Tensor, has: (String) -> Bool) throws -> Parameter {
        guard has(name) else { throw ModelError.missingTensors([name]) }
        let t = try tensor(name)
        guard t.shape == shape, t.dtype.isFloatingPoint else {
            throw ModelError.badTensor("\(name) is \(t.shape.shapeText) \(t.dtype), expected \(shape.shapeText) floats")
        }
        return try add(name, t)
    }

    public subscript(name: String) -> Parameter? { index[name].map { all[$0] } }
    public var elementCount: Int { all.reduce(0) { $0 + $1.count } }
    public func zeroGrads() { for p in all { p.zeroGrad() } }
}
