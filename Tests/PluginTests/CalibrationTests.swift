import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperModels
import LopperCalibration
import LopperPrune

/// Calibration, the DAREx-q search and the paper's effects on a small model pair that
/// runs: at p = 0.99 the searched q beats DARE's 1/(1-p); with large deltas WANDA
/// (which sees the inputs) beats magnitude.
final class CalibrationTests: XCTestCase {
    func text(_ fixture: ModelPairFixture, length: Int = 24) throws -> CalibrationText {
        try CalibrationText(path: fixture.text, tokenizer: try Tokenizer(path: fixture.finetuned), sequenceLength: length)
    }

    func testCalibrationRecordsEveryLinearInput() throws {
        let fixture = try ModelPairFixture(deltaScale: 0.02)
        defer { fixture.remove() }
        let model = try loadModel(folder: fixture.finetuned)
        let calibration = try text(fixture)
        XCTAssertGreaterThan(calibration.sequences.count, 1)
        let statistics = try calibrate(model, on: calibration)
        XCTAssertEqual(statistics.layers.count, 7 * ModelPairFixture.layers + 1, "every linear layer and the head")
        // Reference: gather the inputs of one layer directly.
        let layer = "model.layers.1.mlp.down_proj.weight"
        var rows: [[Float]] = []
        model.linearInputObserver = { name, x in
            guard name == layer else { return }
            let values = x.floats(), cols = x.shape[1]
            for row in 0..<x.shape[0] { rows.append(Array(values[row * cols ..< (row + 1) * cols])) }
        }
        _ = try model.forward(calibration.sequences)
        XCTAssertEqual(rows.count, calibration.tokenCount)
        let mean = try XCTUnwrap(statistics.inputMean(layer)).floats(), norm = try XCTUnwrap(statistics.inputNorm(layer)).floats()
        for column in [0, 17, ModelPairFixture.intermediate - 1] {
            let values = rows.map { Double($0[column]) }
            XCTAssertEqual(Double(mean[column]), values.reduce(0, +) / Double(values.count), accuracy: 1e-5)
            XCTAssertEqual(Double(norm[column]), values.reduce(0) { $0 + $1 * $1 }.squareRoot(), accuracy: 1e-4 * Double(norm[column]))
        }
        let path = fixture.folder + "/stats.safetensors"
        try statistics.write(to: path, metadata: ["lopper.model": fixture.finetuned])
        let read = try CalibrationStatistics(path: path)
        XCTAssertEqual(try read.statistics(for: layer)["input_norm"]?.floats(), norm)
        XCTAssertEqual(read.metadata["lopper.tokens"], String(calibration.tokenCount))
    }

    func testSearchedQBeatsDAREAtHighRateOnFreshMasks() throws {
        let fixture = try ModelPairFixture(deltaScale: 0.02, deltaShift: 0.002)
        defer { fixture.remove() }
        let calibration = try text(fixture)
        let search = try QSearch(basePath: fixture.base, finetunedPath: fixture.finetuned, rate: 0.99, seeds: [0, 1], objective: .outputChange(calibration))
        XCTAssertEqual(search.prunable.count, 7 * ModelPairFixture.layers)
        let result = try search.run()
        XCTAssertLessThanOrEqual(result.best.value, result.dare!.value)
        XCTAssertGreaterThan(result.best.q, 0.01)
        XCTAssertEqual(result.dare!.q, 0.01, accuracy: 1e-12)
        // On masks the search never saw, the searched q still beats DARE.
        let fresh = try QSearch(basePath: fixture.base, finetunedPath: fixture.finetuned, rate: 0.99, seeds: [7, 8, 9], objective: .outputChange(calibration))
        let dare = try fresh.value(q: 0.01), searched = try fresh.value(q: result.best.q)
        XCTAssertLessThan(searched, dare, "searched q \(result.best.q): \(searched) vs DARE \(dare)")
    }

    func testWandaBeatsMagnitudeWhenDeltasAreLarge() throws {
        let fixture = try ModelPairFixture(deltaScale: 0.6)
        defer { fixture.remove() }
        let calibration = try text(fixture)
        let statistics = fixture.folder + "/stats.safetensors"
        try calibrate(try loadModel(folder: fixture.finetuned), on: calibration).write(to: statistics, metadata: [:])
        let reference = try loadModel(folder: fixture.finetuned)
        var change: [String: Double] = [:]
        for method in ["wanda", "magnitude"] {
            var configuration = PruneConfiguration(basePath: fixture.base, finetunedPath: fixture.finetuned, outputPath: fixture.folder + "/" + method)
            configuration.settings = [try Setting(parsing: "rate=0.7"), try Setting(parsing: "granularity=row")]
            configuration.calibrationPath = method == "wanda" ? statistics : nil
            try Pruner(configuration, method: try PipelineFixture.plugin(method)).run()
            change[method] = try OutputChange.between(try loadModel(folder: fixture.folder + "/" + method), reference, on: calibration)
        }
        XCTAssertLessThan(try XCTUnwrap(change["wanda"]), try XCTUnwrap(change["magnitude"]), "\(change)")
    }
}

/// `lopper.search_q` from Lua: by the output change on texts, and by a metric function.
final class SearchLuaTests: XCTestCase {
    func testSearchFromLuaWithTextsAndWithAMetric() throws {
        let fixture = try ModelPairFixture(deltaScale: 0.02, deltaShift: 0.002)
        defer { fixture.remove() }
        let lua = try LuaState()
        defer { lua.close() }
        let results = try lua.run("""
        local base, ft = ...
        local texts = { "The quick brown fox jumps over the lazy dog.", "Pruning removes most of the delta parameters." }
        local builtin = lopper.search_q{ base = base, finetuned = ft, rate = 0.99, seeds = {0, 1}, texts = texts }
        local reference = lopper.model(ft)
        local calls = 0
        local custom = lopper.search_q{ base = base, finetuned = ft, rate = 0.99, seeds = {0, 1}, maximize = true,
          metric = function(m) calls = calls + 1; return -lopper.output_change(m, reference, texts) end }
        assert(#builtin.curve >= 5 and math.abs(builtin.dare.q - 0.01) < 1e-12 and builtin.value <= builtin.dare.value)
        assert(calls == 2 * #custom.curve, "the metric runs once per seed and candidate")
        return builtin.q, custom.q, builtin.value, custom.value
        """, arguments: [.string(fixture.base), .string(fixture.finetuned)])
        XCTAssertEqual(results[0].number, results[1].number, "same objective, same best q")
        XCTAssertEqual(try XCTUnwrap(results[2].number), -(try XCTUnwrap(results[3].number)), accuracy: 1e-9)
        XCTAssertThrowsError(try lua.run("lopper.search_q{ base = 'x' }")) { error in
            XCTAssertTrue("\(error)".contains("base and finetuned"), "\(error)")
        }
        XCTAssertThrowsError(try lua.run("local b, f = ...; lopper.search_q{ base = b, finetuned = f, rate = 0.9, metric = function() return 'x' end }",
                                         arguments: [.string(fixture.base), .string(fixture.finetuned)])) { error in
            XCTAssertTrue("\(error)".contains("metric returned a string"), "\(error)")
        }
    }

    /// Silent acceptance (issue 10, class 9): each bad value is an error naming it.
    func testBadSearchOptionsAreErrorsNamingTheValue() throws {
        let fixture = try ModelPairFixture(deltaScale: 0.02, deltaShift: 0.002)
        defer { fixture.remove() }
        let lua = try LuaState()
        defer { lua.close() }
        for (options, expected) in [
            ("metric = function() return 0/0 end", "metric returned NaN, expected a finite number"),
            ("metric = function() return math.huge end", "metric returned inf"),
            ("texts = {}", "texts holds no text"),
            ("texts = {''}", "texts holds no text"),
            ("texts = {'a b'}, seq_len = 0", "seq_len must be a positive integer, got 0"),
            ("texts = {'a b'}, seq_len = -5", "seq_len must be a positive integer, got -5"),
            ("texts = {'a b'}, seq_len = 1.5", "seq_len must be a positive integer, got 1.5"),
        ] {
            XCTAssertThrowsError(try lua.run("local b, f = ...; lopper.search_q{ base = b, finetuned = f, rate = 0.9, seeds = {0}, \(options) }",
                                             arguments: [.string(fixture.base), .string(fixture.finetuned)]), options) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(options): \(error)")
            }
        }
    }
}
