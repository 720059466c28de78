import Foundation
import LopperCore

/// The optimizers of `lopper finetune`.
public enum OptimizerKind: String, CaseIterable, Sendable {
    /// torch.optim.AdamW: decoupled decay toward 0, `W *= 1 - lr lambda`, then the Adam step.
    case adamw
    /// AdamR-L2 (DAREx): `W -= lr lambda / vbar (W - W0)`, then the Adam step.
    case adamrL2 = "adamr-l2"
    /// AdamR-L1 (DAREx): `W -= lr lambda / vbar sign(W - W0)`, then the Adam step.
    case adamrL1 = "adamr-l1"
}

public struct OptimizerSettings: Sendable {
    public var learningRate: Double
    /// The decay strength of parameters `AdamOptimizer`'s `lambda` does not set.
    public var lambda: Double
    public var beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8

    public init(learningRate: Double, lambda: Double) {
        self.learningRate = learningRate
        self.lambda = lambda
    }
}

/// Adam over every parameter with F32 moments, and the decay of `kind`. For AdamR, `vbar`
/// is one scalar for the whole model, `sqrt(mean over all parameters of v_hat)` (1 when 0),
/// as the official DAREx AdamR computes it; the pull toward W0 comes before the Adam step.
public final class AdamOptimizer {
    public let kind: OptimizerKind
    public let settings: OptimizerSettings
    public private(set) var step = 0
    /// The last step's `vbar` (AdamR; 1 for AdamW, which does not use it).
    public private(set) var lastVbar: Double = 1
    let parameters: [Parameter]
    let firstMoments: [Tensor], secondMoments: [Tensor]
    /// W0 of each parameter (AdamR only).
    let origins: [Tensor]?
    /// The decay strength of each parameter.
    public let lambdas: [Double]
    /// AdamR with a custom pull: the direction D of `W -= lr lambda / vbar D` from
    /// (parameter name, W, W0, step), in place of W - W0 or sign(W - W0).
    public var pullRule: ((_ name: String, _ weights: Tensor, _ origin: Tensor, _ step: Int) throws -> Tensor)?

    /// `origins`: the weights to pull toward, by name (default: the parameters' values now).
    /// `lambda`: the decay strength by parameter name (per tensor or layer; default: settings.lambda).
    public init(_ kind: OptimizerKind, _ settings: OptimizerSettings, parameters: ParameterSet,
                origins given: ((String) -> Tensor?)? = nil, lambda: ((String) throws -> Double)? = nil) throws {
        self.kind = kind
        self.settings = settings
        self.parameters = parameters.all
        lambdas = try parameters.all.map { try lambda?($0.name) ?? settings.lambda }
        firstMoments = try parameters.all.map { try Tensor(zeros: $0.shape) }
        secondMoments = try parameters.all.map { try Tensor(zeros: $0.shape) }
        origins = kind == .adamw ? nil : try parameters.all.map { p in
            guard let given = given?(p.name) else { return try p.value.clone() }
            guard given.shape == p.shape else { throw TensorError.invalid("W0 of \(p.name) is \(given.shape.shapeText), expected \(p.shape.shapeText)") }
            return given.dtype == .f32 ? try given.clone() : try given.converted(to: .f32)
        }
    }

    /// The moments by parameter name (`m.NAME`, `v.NAME`), for a checkpoint.
    public var moments: [(String, Tensor)] {
        zip(parameters, zip(firstMoments, secondMoments)).flatMap { p, m in [("m." + p.name, m.0), ("v." + p.name, m.1)] }
    }

    /// Continues from a checkpoint: the step count and `moment(name)` for every `m.NAME`, `v.NAME`.
    public func restore(step: Int, moment: (String) throws -> Tensor) throws {
        for (p, (m, v)) in zip(parameters, zip(firstMoments, secondMoments)) {
            for (target, key) in [(m, "m." + p.name), (v, "v." + p.name)] {
                let saved = try moment(key)
                guard saved.shape == p.shape, saved.dtype == .f32 else {
                    throw TensorError.invalid("\(key) is \(saved.shape.shapeText) \(saved.dtype), expected \(p.shape.shapeText) F32")
                }
                floats(target).update(from: floats(saved), count: p.count)
            }
        }
        self.step = step
    }

    /// One step from the gradients in `parameters`.
    public func update() throws {
        step += 1
        let s = settings, t = Double(step)
        let b1 = Float(s.beta1), b2 = Float(s.beta2)
        let correction1 = 1 - pow(s.beta1, t), correction2 = 1 - pow(s.beta2, t)
        var total = 0.0, count = 0
        for (i, p) in parameters.enumerated() {
            let m = floats(firstMoments[i]), v = floats(secondMoments[i]), g = p.grads
            total += chunkSums(p.count) { r in
                updateMoments(m + r.lowerBound, v + r.lowerBound, g + r.lowerBound, count: r.count, b1: b1, b2: b2,
                              a1: Float(1 - s.beta1), a2: Float(1 - s.beta2))
            }
            count += p.count
        }
        let meanV = count > 0 ? total / correction2 / Double(count) : 0
        lastVbar = kind == .adamw ? 1 : (meanV > 0 ? meanV.squareRoot() : 1)
        let stepSize = Float(s.learningRate / correction1), root2 = Float(correction2.squareRoot()), eps = Float(s.epsilon)
        for (i, p) in parameters.enumerated() {
            let w = p.values, n = p.count, decay = Float(s.learningRate * lambdas[i] / lastVbar)
            if let pullRule, kind != .adamw, lambdas[i] != 0 {
                let direction = try pullRule(p.name, p.value, origins![i], step)
                guard direction.shape == p.shape, direction.dtype == .f32 else {
                    throw TensorError.invalid("the pull rule gave \(direction.dtype) \(direction.shape.shapeText) for \(p.name) \(p.shape.shapeText); it must give F32 of the same shape")
                }
                let d = floats(direction)
                Parallel.forEachChunk(count: n) { r in pullAlong(w + r.lowerBound, d + r.lowerBound, count: r.count, rate: decay) }
            } else {
                let origin = origins.map { floats($0[i]) }, factor = 1 - Float(s.learningRate * lambdas[i])
                Parallel.forEachChunk(count: n) { r in
                    let w = w + r.lowerBound, o = origin.map { $0 + r.lowerBound }
                    switch kind {
                    case .adamw: if lambdas[i] != 0 { scaleInPlace(w, count: r.count, by: factor) }
                    case .adamrL2 where lambdas[i] != 0: pullL2(w, toward: o!, count: r.count, rate: decay)
                    case .adamrL1 where lambdas[i] != 0: pullL1(w, toward: o!, count: r.count, rate: decay)
                    default: break
                    }
                }
            }
            let m = floats(firstMoments[i]), v = floats(secondMoments[i])
            Parallel.forEachChunk(count: n) { r in
                adamStep(w + r.lowerBound, m + r.lowerBound, v + r.lowerBound, count: r.count, stepSize: stepSize, root2: root2, eps: eps)
            }
        }
    }
}

/// The sum of `body` over the `Parallel` chunks of `0..<count`, added in chunk order: the
/// same total on any thread count.
private func chunkSums(_ count: Int, _ body: (Range<Int>) -> Double) -> Double {
    let chunks = (count + Parallel.chunkSize - 1) / Parallel.chunkSize
    var sums = [Double](repeating: 0, count: chunks)
    sums.withUnsafeMutableBufferPointer { sums in
        Parallel.forEachChunk(count: count) { r in sums[r.lowerBound / Parallel.chunkSize] = body(r) }
    }
    return sums.reduce(0, +)
}

// SIMD kernels over contiguous F32 arrays, 8 lanes and a scalar tail.

/// m = b1 m + a1 g, v = b2 v + a2 g^2 (a = 1 - b, rounded from Double as torch does); returns sum v (in Double).
func updateMoments(_ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                   count: Int, b1: Float, b2: Float, a1: Float, a2: Float) -> Double {
    var i = 0, total = 0.0
    let rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v), rg = UnsafeRawPointer(g)
    while i + 8 <= count {
        let gi = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let mi = b1 * rm.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + a1 * gi
        let vi = b2 * rv.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + a2 * (gi * gi)
        rm.storeBytes(of: mi, toByteOffset: i * 4, as: SIMD8<Float>.self)
        rv.storeBytes(of: vi, toByteOffset: i * 4, as: SIMD8<Float>.self)
        total += Double(vi.sum())
        i += 8
    }
    while i < count {
        m[i] = b1 * m[i] + a1 * g[i]
        v[i] = b2 * v[i] + a2 * (g[i] * g[i])
        total += Double(v[i])
        i += 1
    }
    return total
}

/// w -= stepSize m / (sqrt(v) / root2 + eps), torch's form of m_hat / (sqrt(v_hat) + eps).
func adamStep(_ w: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ v: UnsafePointer<Float>, count: Int,
              stepSize: Float, root2: Float, eps: Float) {
    var i = 0
    let rw = UnsafeMutableRawPointer(w), rm = UnsafeRawPointer(m), rv = UnsafeRawPointer(v)
    while i + 8 <= count {
        let mi = rm.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let vi = rv.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let wi = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        rw.storeBytes(of: wi - stepSize * mi / (vi.squareRoot() / root2 + eps), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        w[i] -= stepSize * m[i] / (v[i].squareRoot() / root2 + eps)
        i += 1
    }
}

/// w *= factor.
func scaleInPlace(_ w: UnsafeMutablePointer<Float>, count: Int, by factor: Float) {
    for i in 0..<count { w[i] *= factor }
}

/// w -= rate (w - w0).
func pullL2(_ w: UnsafeMutablePointer<Float>, toward w0: UnsafePointer<Float>, count: Int, rate: Float) {
    var i = 0
    let rw = UnsafeMutableRawPointer(w), r0 = UnsafeRawPointer(w0)
    while i + 8 <= count {
        let wi = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let oi = r0.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        rw.storeBytes(of: wi - rate * (wi - oi), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { w[i] -= rate * (w[i] - w0[i]); i += 1 }
}

/// w -= rate d.
func pullAlong(_ w: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, count: Int, rate: Float) {
    var i = 0
    let rw = UnsafeMutableRawPointer(w), rd = UnsafeRawPointer(d)
    while i + 8 <= count {
        let wi = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        rw.storeBytes(of: wi - rate * rd.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { w[i] -= rate * d[i]; i += 1 }
}

/// w -= rate sign(w - w0), sign(0) = 0.
func pullL1(_ w: UnsafeMutablePointer<Float>, toward w0: UnsafePointer<Float>, count: Int, rate: Float) {
    var i = 0
    let rw = UnsafeMutableRawPointer(w), r0 = UnsafeRawPointer(w0)
    let zero = SIMD8<Float>(repeating: 0), one = SIMD8<Float>(repeating: 1)
    while i + 8 <= count {
        let wi = rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let d = wi - r0.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let sign = zero.replacing(with: one, where: d .> zero).replacing(with: -one, where: d .< zero)
        rw.storeBytes(of: wi - rate * sign, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        let d = w[i] - w0[i]
        w[i] -= rate * (d > 0 ? 1 : d < 0 ? -1 : 0)
        i += 1
    }
}
