import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// Methods that read calibration statistics (`ctx.stats`): WANDA's scores and
/// DAREx-q's input means, from a statistics file written here.
final class CalibratedMethodTests: XCTestCase {
    let weight = "model.layers.0.mlp.up_proj.weight"

    /// Input norms and means for every prunable weight: norms grow with the column index.
    static func writeStatistics(_ fixture: PipelineFixture, features: Int? = nil) throws -> String {
        let path = fixture.folder + "/stats.safetensors"
        var tensors: [(String, Tensor)] = []
        for name in PipelineFixture.prunable where name.hasSuffix(".weight") {
            let columns = try features ?? fixture.finetunedTensor(name).shape[1]
            tensors.append((name + ".input_mean", Tensor((0..<columns).map { 0.5 + Float($0 % 3) })))
            tensors.append((name + ".input_norm", Tensor((0..<columns).map { Float($0 + 1) / Float(columns) })))
        }
        try saveSafetensors(tensors, to: path, metadata: ["lopper.tokens": "100"])
        return path
    }

    @discardableResult
    func prune(_ fixture: PipelineFixture, _ method: String, _ settings: [String], statistics: String?, out: String) throws -> RunReport {
        var configuration = PruneConfiguration(basePath: fixture.base, finetunedPath: fixture.finetuned, outputPath: fixture.folder + "/" + out)
        configuration.settings = try settings.map(Setting.init(parsing:))
        configuration.output = .delta
        configuration.calibrationPath = statistics
        return try Pruner(configuration, method: try PipelineFixture.plugin(method)).run()
    }

    func testWandaKeepsTheLargestDeltaTimesInputNormPerRow() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let statistics = try Self.writeStatistics(fixture)
        try prune(fixture, "wanda", ["rate=0.75"], statistics: statistics, out: "wanda")
        let pruned = try fixture.tensor("wanda", weight).floats()
        let original = try fixture.delta(weight)
        let cols = PipelineFixture.cols, k = cols / 4
        for row in 0..<PipelineFixture.rows {
            let scores = (0..<cols).map { abs(original[row * cols + $0]) * Double($0 + 1) / Double(cols) }
            // Reference: the k largest scores, ties to the lower index.
            let expected = Set((0..<cols).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(k))
            let kept = Set((0..<cols).filter { pruned[row * cols + $0] != 0 })
            // Scores are compared in f32: allow swaps between nearly equal scores only.
            let differing = kept.symmetricDifference(expected)
            XCTAssertLessThanOrEqual(differing.count, 2, "row \(row)")
            XCTAssertEqual(kept.count, k, "row \(row)")
        }
        // Magnitude alone would keep other entries: the input norms matter.
        try prune(fixture, "magnitude", ["rate=0.75", "granularity=row"], statistics: nil, out: "magnitude")
        XCTAssertNotEqual(try fixture.tensor("magnitude", weight).floats().map { $0 != 0 }, pruned.map { $0 != 0 })
    }

    func testWandaWithoutStatisticsSaysWhatToDo() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        XCTAssertThrowsError(try prune(fixture, "wanda", [], statistics: nil, out: "x")) { error in
            XCTAssertTrue("\(error)".contains("lopper calibrate"), "\(error)")
        }
    }

    func testStatisticsOfAnotherModelAreRefused() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let statistics = try Self.writeStatistics(fixture, features: 7)
        XCTAssertThrowsError(try prune(fixture, "wanda", [], statistics: statistics, out: "x")) { error in
            XCTAssertTrue("\(error)".contains("has 7 features"), "\(error)")
        }
    }

    func testDarexQUsesTheInputMeans() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let statistics = try Self.writeStatistics(fixture)
        let report = try prune(fixture, "darex_q", ["rate=0.9"], statistics: statistics, out: "q")
        let line = try XCTUnwrap(report.tensors.first { $0.name == weight })
        XCTAssertFalse(line.notes.contains { $0.contains("no calibration") })
        // q* from c_ij = D_ij * mean(x_j), computed here independently.
        let original = try fixture.delta(weight), cols = PipelineFixture.cols
        var sums = [Double](repeating: 0, count: PipelineFixture.rows), squares = sums
        for row in 0..<PipelineFixture.rows {
            for column in 0..<cols {
                let c = original[row * cols + column] * (0.5 + Double(column % 3))
                sums[row] += c; squares[row] += c * c
            }
        }
        let expected = DARExQ.mseOptimal(p: 0.9, rowSums: sums, rowSquares: squares)
        XCTAssertEqual(try XCTUnwrap(line.figures["q"]), expected, accuracy: 1e-4)
    }
}
