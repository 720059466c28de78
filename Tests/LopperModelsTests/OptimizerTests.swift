import Foundation
import LopperCore
import LopperIO
@testable import LopperModels
import XCTest

/// AdamW, AdamR-L2 and AdamR-L1 against hand-computed steps and a scalar Double reference
/// written from the definitions (the official AdamR loop, torch's AdamW).
final class OptimizerTests: XCTestCase {
    func parameters(_ values: [[Float]]) throws -> ParameterSet {
        var set = ParameterSet()
        for (i, v) in values.enumerated() { _ = try set.add("p\(i)", Tensor(v)) }
        return set
    }

    func setGradients(_ set: ParameterSet, _ grads: [[Float]]) {
        for (p, g) in zip(set.all, grads) { for (i, x) in g.enumerated() { p.grads[i] = x } }
    }

    /// One step by hand: w = [1, -2], W0 = [0, 0], g = [0.5, 0.5], lr 0.1, lambda 0.5: v_hat = 0.25,
    /// vbar = 0.5, pull rate lr lambda / vbar = 0.1, Adam step lr g / |g| = 0.1.
    func testOneStepByHand() throws {
        let expected: [OptimizerKind: [Float]] = [.adamrL2: [0.8, -1.9], .adamrL1: [0.8, -2.0], .adamw: [0.85, -2.0]]
        for (kind, want) in expected {
            let set = try parameters([[1, -2]])
            let optimizer = try AdamOptimizer(kind, OptimizerSettings(learningRate: 0.1, lambda: 0.5), parameters: set,
                                              origins: { _ in Tensor([0, 0]) })
            setGradients(set, [[0.5, 0.5]])
            try optimizer.update()
            XCTAssertEqual(set.all[0].value.floats()[0], want[0], accuracy: 1e-6, "\(kind)")
            XCTAssertEqual(set.all[0].value.floats()[1], want[1], accuracy: 1e-6, "\(kind)")
            XCTAssertEqual(optimizer.lastVbar, kind == .adamw ? 1 : 0.5, accuracy: 1e-7, "\(kind)")
        }
    }

    /// The definition in Double, one scalar at a time, over all parameters together.
    func reference(_ kind: OptimizerKind, w: [[Double]], w0: [[Double]], grads: [[[Double]]], lr: Double, lambda: Double) -> [[Double]] {
        var w = w, m = w.map { $0.map { _ in 0.0 } }, v = m
        let b1 = 0.9, b2 = 0.999, eps = 1e-8
        for (step, g) in grads.enumerated() {
            let t = Double(step + 1)
            for p in w.indices { for i in w[p].indices {
                m[p][i] = b1 * m[p][i] + (1 - b1) * g[p][i]
                v[p][i] = b2 * v[p][i] + (1 - b2) * g[p][i] * g[p][i]
            } }
            let vhat = v.flatMap { $0 }.map { $0 / (1 - pow(b2, t)) }
            let mean = vhat.reduce(0, +) / Double(vhat.count)
            let vbar = mean > 0 ? mean.squareRoot() : 1
            for p in w.indices { for i in w[p].indices {
                let d = w[p][i] - w0[p][i]
                switch kind {
                case .adamw: w[p][i] *= 1 - lr * lambda
                case .adamrL2: w[p][i] -= lr * lambda / vbar * d
                case .adamrL1: w[p][i] -= lr * lambda / vbar * (d > 0 ? 1 : d < 0 ? -1 : 0)
                }
                let mhat = m[p][i] / (1 - pow(b1, t)), vh = v[p][i] / (1 - pow(b2, t))
                w[p][i] -= lr * mhat / (vh.squareRoot() + eps)
            } }
        }
        return w
    }

    /// Ten steps over three parameters of different sizes (SIMD bodies and tails) and gradient
    /// scales, so that vbar mixes them; W0 differs from the start.
    func testTenStepsMatchTheReference() throws {
        let sizes = [19, 8, 3]
        func values(_ seed: UInt64, _ scale: Float) -> [[Float]] {
            sizes.enumerated().map { GradientTests.random($1, seed: seed &+ UInt64($0), scale: scale * Float($0 + 1)) }
        }
        let w = values(100, 1), w0 = values(200, 1)
        let grads = (0..<10).map { values(300 + UInt64($0) * 7, 0.1) }
        for kind in OptimizerKind.allCases {
            let set = try parameters(w)
            let optimizer = try AdamOptimizer(kind, OptimizerSettings(learningRate: 0.01, lambda: 0.3), parameters: set,
                                              origins: { name in Tensor(w0[Int(name.dropFirst())!]) })
            for g in grads {
                setGradients(set, g)
                try optimizer.update()
            }
            let expected = reference(kind, w: w.map { $0.map(Double.init) }, w0: w0.map { $0.map(Double.init) },
                                     grads: grads.map { $0.map { $0.map(Double.init) } }, lr: 0.01, lambda: 0.3)
            for (p, e) in zip(set.all, expected) {
                for (a, b) in zip(p.value.floats(), e) {
                    XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b)), "\(kind) \(p.name)")
                }
            }
            // and the decay made a difference: without it the result is another
            let plain = reference(kind, w: w.map { $0.map(Double.init) }, w0: w0.map { $0.map(Double.init) },
                                  grads: grads.map { $0.map { $0.map(Double.init) } }, lr: 0.01, lambda: 0)
            XCTAssertGreaterThan(zip(expected.flatMap { $0 }, plain.flatMap { $0 }).map { abs($0 - $1) }.max()!, 1e-4, "\(kind)")
        }
    }

    /// A per-parameter lambda: 0 leaves that parameter to plain Adam, the others decay as set.
    func testLambdaPerParameter() throws {
        let w: [[Float]] = [[1, -2, 0.5], [0.3, 0.7]], w0: [[Float]] = [[0, 0, 0], [0, 1]]
        let grads: [[Float]] = [[0.1, -0.2, 0.3], [0.05, 0.01]]
        let set = try parameters(w)
        let optimizer = try AdamOptimizer(.adamrL2, OptimizerSettings(learningRate: 0.01, lambda: 0.5), parameters: set,
                                          origins: { Tensor(w0[Int($0.dropFirst())!]) }, lambda: { $0 == "p0" ? 0 : 0.5 })
        XCTAssertEqual(optimizer.lambdas, [0, 0.5])
        for _ in 0..<3 { setGradients(set, grads); try optimizer.update() }
        let d = { (l: Double) in self.reference(.adamrL2, w: w.map { $0.map(Double.init) }, w0: w0.map { $0.map(Double.init) },
                                               grads: Array(repeating: grads.map { $0.map(Double.init) }, count: 3), lr: 0.01, lambda: l) }
        let plain = d(0), decayed = d(0.5)
        for (a, b) in zip(set.all[0].value.floats(), plain[0]) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        for (a, b) in zip(set.all[1].value.floats(), decayed[1]) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }

    /// The same ten steps as python/lopper_adamr.py (PyTorch) took on the same gradients
    /// (Scripts/make_optimizer_fixtures.py), to 1e-6 relative.
    func testTenStepsMatchThePyTorchOptimizer() throws {
        let path = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/optimizer/adamr.safetensors").path
        let file = try SafetensorsFile(path: path)
        let lr = Double(file.metadata["lr"]!)!, decay = Double(file.metadata["weight_decay"]!)!, steps = Int(file.metadata["steps"]!)!
        for (kind, mode) in [(OptimizerKind.adamrL2, "l2"), (.adamrL1, "l1"), (.adamw, "adamw")] {
            var set = ParameterSet()
            for i in 0..<3 { _ = try set.add("p\(i)", try file.tensor("w.\(i)")) }
            let optimizer = try AdamOptimizer(kind, OptimizerSettings(learningRate: lr, lambda: decay), parameters: set,
                                              origins: { try? file.tensor("w0." + $0.dropFirst()) })
            for step in 0..<steps {
                for (i, p) in set.all.enumerated() {
                    let g = try file.tensor("grad.\(step).\(i)").floats()
                    for j in 0..<p.count { p.grads[j] = g[j] }
                }
                try optimizer.update()
            }
            for (i, p) in set.all.enumerated() {
                let expected = try file.tensor("out.\(mode).\(i)").floats()
                for (a, e) in zip(p.value.floats(), expected) {
                    XCTAssertEqual(a, e, accuracy: 1e-6 * max(1, abs(e)), "\(mode) p\(i)")
                }
            }
        }
    }

    func testZeroGradientsLeaveAdamRAtW0() throws {
        let set = try parameters([[1, 2, 3]])
        let optimizer = try AdamOptimizer(.adamrL2, OptimizerSettings(learningRate: 0.1, lambda: 1), parameters: set)
        try optimizer.update()
        XCTAssertEqual(optimizer.lastVbar, 1, "vbar is 1 when every v is 0")
        XCTAssertEqual(set.all[0].value.floats(), [1, 2, 3])
    }
}
