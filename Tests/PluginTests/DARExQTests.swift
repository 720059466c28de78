import Foundation
import XCTest
import LopperCore
import LopperLua
import LopperPrune

/// DAREx-q's choices of q against hand-computed and brute-force references.
final class DARExQTests: XCTestCase {
    func testClosedFormMinimisesTheExpectedSquaredOutputChange() {
        let sums = [0.3, -0.1, 0.5], squares = [0.02, 0.03, 0.01], p = 0.9
        let q = DARExQ.mseOptimal(p: p, rowSums: sums, rowSquares: squares)
        // Hand computation: (1-p) + p * sum Q / sum S^2 = 0.1 + 0.9 * 0.06 / 0.35.
        XCTAssertEqual(q, 0.1 + 0.9 * 0.06 / 0.35, accuracy: 1e-12)
        // And it is the minimum of sum_i (1-(1-p)/q)^2 S_i^2 + p(1-p) Q_i / q^2 on a fine grid.
        func risk(_ q: Double) -> Double {
            zip(sums, squares).reduce(0) { $0 + pow(1 - (1 - p) / q, 2) * $1.0 * $1.0 + p * (1 - p) * $1.1 / (q * q) }
        }
        let grid = stride(from: 0.1001, through: 1.0, by: 0.0001)
        let best = grid.min { risk($0) < risk($1) }!
        XCTAssertEqual(q, best, accuracy: 2e-4)
        XCTAssertEqual(DARExQ.mseOptimal(p: p, rowSums: [0], rowSquares: [1]), 1)
        XCTAssertEqual(DARExQ.mseOptimal(p: 0.5, rowSums: [0.01], rowSquares: [1]), 1, "clipped to 1")
    }

    func testAnalyticalQScansTheBoundPerRowAsTheDARExCodeDoes() {
        let p = 0.9, eta = 2.0, gamma = 0.05
        XCTAssertEqual(DARExQ.phi(0.5), 0.5)
        XCTAssertEqual(DARExQ.phi(0.9), (1 - 1.8) / log(0.1 / 0.9), accuracy: 1e-12)
        // Rows of different signs and sizes; the reference is the official loop, written out here:
        // q from 1-p by 0.001 below 0.999, |bound| per row, ties move on, stop once 80% of rows stopped improving.
        let sums = [-0.5, 0.2, 0.01, -2.0, 0.7], squares = [0.4, 0.1, 0.3, 1.5, 0.05]
        func reference(stopFraction: Double) -> [Double] {
            var q = [Double](repeating: 0.1, count: sums.count), best = [Double](repeating: 10_000, count: sums.count)
            var stop = [Double](repeating: 0, count: sums.count)
            for step in 100..<999 {
                let candidate = Double(step) * 0.001
                let values = zip(sums, squares).map { s, q2 in
                    abs(eta * (1 - 0.1 / candidate) * s + eta * eta * DARExQ.phi(p) * q2 / (4 * candidate * candidate) + log(2 / gamma))
                }
                for row in values.indices {
                    let smaller = values[row] <= best[row], larger = values[row] >= best[row]
                    if smaller { best[row] = values[row]; q[row] = candidate }
                    if larger { stop[row] = 1 }
                }
                if stop.reduce(0, +) / Double(stop.count) >= stopFraction { break }
            }
            return q
        }
        for fraction in [0.8, 1.0, 0.2] {
            let (q, rows) = DARExQ.analytical(p: p, eta: eta, gamma: gamma, stopFraction: fraction, rowSums: sums, rowSquares: squares)
            let expected = reference(stopFraction: fraction)
            for row in rows.indices { XCTAssertEqual(rows[row], expected[row], accuracy: 1e-9, "row \(row), stop at \(fraction)") }
            XCTAssertEqual(q, expected.reduce(0, +) / Double(expected.count), accuracy: 1e-12)
            for value in rows { XCTAssertTrue(value >= 0.1 - 1e-12 && value < 0.999, "\(value)") }
        }
        // At p = 0.999 the walk starts at q = 0.001, never below 1 - p.
        let high = DARExQ.analytical(p: 0.999, eta: 0.5, rowSums: [0.01, -0.3], rowSquares: [0.001, 0.2])
        XCTAssertTrue(high.rows.allSatisfy { $0 >= 0.001 - 1e-15 }, "\(high.rows)")
    }

    func testLuaDarexQMatchesTheSwiftReference() throws {
        let lua = try LuaState(sandbox: .init())
        defer { lua.close() }
        let delta = Tensor([0.1, -0.2, 0.3, 0.05, 0.02, -0.01], shape: [2, 3])
        lua.setGlobal("d", .tensor(delta))
        let closed = try lua.run("return lopper.darex_q{ delta = d, rate = 0.9 }")
        let sums = [0.2, 0.06], squares = [0.01 + 0.04 + 0.09, 0.0025 + 0.0004 + 0.0001]
        XCTAssertEqual(try XCTUnwrap(closed.first?.number), DARExQ.mseOptimal(p: 0.9, rowSums: sums, rowSquares: squares), accuracy: 1e-6)
        let analytical = try lua.run("return lopper.darex_q{ delta = d, rate = 0.9, mode = 'analytical', eta = 3 }")
        let reference = DARExQ.analytical(p: 0.9, eta: 3, rowSums: sums, rowSquares: squares)
        XCTAssertEqual(try XCTUnwrap(analytical.first?.number), reference.q, accuracy: 2e-3)
        XCTAssertEqual(try XCTUnwrap(analytical.last?.tensor).count, 2)
        // With inputs x, c_ij = D_ij x_j.
        lua.setGlobal("x", .tensor(Tensor([1, 0, 2], shape: [3])))
        let weighted = try lua.run("return lopper.darex_q{ delta = d, rate = 0.9, inputs = x }")
        let weightedSums = [0.1 + 0.6, 0.05 - 0.02], weightedSquares = [0.01 + 0.36, 0.0025 + 0.0004]
        XCTAssertEqual(try XCTUnwrap(weighted.first?.number), DARExQ.mseOptimal(p: 0.9, rowSums: weightedSums, rowSquares: weightedSquares), accuracy: 1e-6)
        XCTAssertThrowsError(try lua.run("return lopper.darex_q{ delta = d, rate = 0.9, mode = 'guess' }"))
        // From base and fine-tuned directly: the same q as from their delta.
        lua.setGlobal("w0", .tensor(Tensor([1, 1, 1, 2, 2, 2], shape: [2, 3], dtype: .bf16)))
        lua.setGlobal("w1", .tensor(try add(Tensor([1, 1, 1, 2, 2, 2], shape: [2, 3]), delta, dtype: .f32)))
        let direct = try lua.run("return lopper.darex_q{ base = w0, finetuned = w1, rate = 0.9, inputs = x }, lopper.darex_q{ delta = w1 - w0, rate = 0.9, inputs = x }")
        XCTAssertEqual(try XCTUnwrap(direct[0].number), try XCTUnwrap(direct[1].number), accuracy: 1e-6)
    }

    func testFixedQRescalesByOneOverQ() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let report = try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.9", "mode=fixed", "q=0.25"], output: .delta)
        let name = "model.layers.0.mlp.up_proj.weight"
        XCTAssertEqual(report.tensors.first { $0.name == name }?.rescale, 4)
        let pruned = try fixture.tensor("out", name).floats().map(Double.init)
        let original = try fixture.delta(name)
        for (after, before) in zip(pruned, original) where after != 0 { XCTAssertEqual(after, 4 * before, accuracy: 1e-5) }
        XCTAssertThrowsError(try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.9", "mode=fixed", "q=0.05"], out: "bad")) { error in
            XCTAssertTrue("\(error)".contains("must be at least 1 - rate"), "\(error)")
        }
        let closed = try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.9"], out: "closed")
        let line = try XCTUnwrap(closed.tensors.first { $0.name == name })
        XCTAssertTrue(line.notes.contains { $0.contains("no calibration statistics") })
        let q = try XCTUnwrap(line.figures["q"])
        XCTAssertGreaterThan(q, 0.1)
        XCTAssertLessThanOrEqual(q, 1)
    }
}
