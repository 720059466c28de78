import LopperCore

/// `y = x W^T (+ b)`: a linear layer as transformers store it (`W` is [out, in]),
/// on F32 activations [tokens, in] through OpenBLAS's SGEMM. Weights of any compute
/// dtype are widened to F32 once, when the layer is built.
public struct Linear {
    public let weight: Tensor
    public let bias: Tensor?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(weight: Tensor, bias: Tensor? = nil) throws {
        guard weight.rank == 2 else { throw TensorError.invalid("Linear: weight must be 2-D, got \(weight.shape.shapeText)") }
        if let bias, bias.shape != [weight.shape[0]] {
            throw TensorError.invalid("Linear: bias shape \(bias.shape.shapeText) does not match \(weight.shape[0]) outputs")
        }
        self.weight = weight.dtype == .f32 ? weight : try weight.converted(to: .f32)
        self.bias = try bias.map { $0.dtype == .f32 ? $0 : try $0.converted(to: .f32) }
    }

    /// `x` is F32 [tokens, in]; returns F32 [tokens, out].
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 2, x.shape[1] == inFeatures, x.dtype == .f32 else {
            throw TensorError.invalid("Linear: input \(x.shape.shapeText) \(x.dtype) does not fit weight \(weight.shape.shapeText)")
        }
        let tokens = x.shape[0]
        let y = try Tensor(uninitialized: [tokens, outFeatures], dtype: .f32)
        if tokens > 0 {
            sgemm(false, true, m: tokens, n: outFeatures, k: inFeatures,
                  x.data.assumingMemoryBound(to: Float.self), lda: inFeatures,
                  weight.data.assumingMemoryBound(to: Float.self), ldb: inFeatures, beta: 0,
                  y.data.assumingMemoryBound(to: Float.self), ldc: outFeatures)
        }
        if let bias {
            let b = bias.data.assumingMemoryBound(to: Float.self), out = y.data.assumingMemoryBound(to: Float.self)
            for row in 0..<tokens { for column in 0..<outFeatures { out[row * outFeatures + column] += b[column] } }
        }
        return y
    }
}
