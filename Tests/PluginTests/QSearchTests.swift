import Foundation
import XCTest
import LopperCalibration
import LopperCore
import LopperIO
import LopperModels
import LopperPrune

/// DAREx-q's searches: the grid against brute force, on a synthetic objective and on a real
/// (small) encoder pair, and the analytical mode's eta search.
final class QSearchTests: XCTestCase {
    func testTheCoarseGridIsGeometricAndDenseNearOneMinusP() throws {
        let high = try QGridSearch.Grid.q(rate: 0.999)
        XCTAssertEqual(high.coarse.first!, 0.001, accuracy: 1e-15)
        XCTAssertEqual(high.coarse.last!, 1)
        XCTAssertEqual(high.coarse.count, 16)
        let between = high.coarse.filter { $0 > 0.001 && $0 < 0.05 }
        XCTAssertGreaterThanOrEqual(between.count, 7, "\(high.coarse)")
        for (a, b) in zip(high.coarse, high.coarse.dropFirst()) { XCTAssertEqual(b / a, pow(1000, 1 / 15.0), accuracy: 1e-9) }
        let bounded = try QGridSearch.Grid.q(rate: 0.99, lower: 0.02, upper: 0.5, steps: 5)
        let step: Double = pow(25, 0.25)
        let expected: [Double] = [0.02, 0.02 * step, 0.1, 0.1 * step, 0.5]
        for (value, reference) in zip(bounded.coarse, expected) { XCTAssertEqual(value, reference, accuracy: 1e-12) }
        XCTAssertEqual(bounded.coarse.count, 5)
        XCTAssertThrowsError(try QGridSearch.Grid.q(rate: 0.99, lower: 0.005)) { XCTAssertTrue("\($0)".contains("below 1 - rate"), "\($0)") }
        XCTAssertThrowsError(try QGridSearch.Grid.q(rate: 0.99, steps: 1))
    }

    func testTheWalkFindsABruteForceOptimumWithinOneFineStep() throws {
        for (p, optimum) in [(0.99, 0.037), (0.999, 0.0053), (0.999, 0.0011), (0.9, 0.93)] {
            let grid = try QGridSearch.Grid.q(rate: p)
            var evaluations = 0
            let search = try QGridSearch(grid: grid, seeds: [0, 1]) { q, seed in
                evaluations += 1
                return pow(log(q / optimum), 2) + 0.01 * Double(seed)
            }
            let result = try search.run()
            XCTAssertLessThanOrEqual(abs(log(result.best.q / optimum)), log(grid.fineRatio) / 2 + 1e-9, "p = \(p)")
            XCTAssertLessThan(evaluations, 2 * 40, "p = \(p): the stop rules keep the walk short")
            XCTAssertEqual(result.curve.map(\.q), result.curve.map(\.q).sorted())
        }
        // A maximised objective walks the same way.
        let up = try QGridSearch(grid: try QGridSearch.Grid.q(rate: 0.999), seeds: [0], higherIsBetter: true) { q, _ in -abs(log(q / 0.02)) }
        XCTAssertEqual(try up.run().best.q, 0.02, accuracy: 0.02 * 0.05)
    }

    /// At high rates a labeled metric sits at chance near q = 1-p, up to seed noise: the walk must
    /// cross that plateau (noise is no miss) and still stop after a real decline.
    func testTheWalkCrossesANoisyPlateauAtDAREsEnd() throws {
        let grid = try QGridSearch.Grid.q(rate: 0.99)
        var evaluated: [Double] = []
        let search = try QGridSearch(grid: grid, seeds: [0, 1, 2, 3], higherIsBetter: true) { q, seed in
            evaluated.append(q)
            // Seeds spread by +-0.02; along the plateau the mean slips a little (less than that spread).
            let noise = seed % 2 == 0 ? 0.02 : -0.02
            return q < 0.06 ? 0.5 - 0.002 * log(q / 0.01) + noise : Swift.max(0.5, 0.95 - 0.3 * pow(log(q / 0.2), 2)) + noise
        }
        let result = try search.run()
        XCTAssertLessThanOrEqual(abs(log(result.best.q / 0.2)), 3 * log(grid.fineRatio), "best \(result.best.q)")
        XCTAssertLessThan(Set(evaluated).count, 16 + 18, "the walk stops after the peak")
    }

    func testOutlierSeedsAreDroppedOnlyWhenAsked() throws {
        XCTAssertEqual(QGridSearch.average([1, 2, 3, 10], dropOutlier: false), 4)
        XCTAssertEqual(QGridSearch.average([1, 2, 3, 10], dropOutlier: true), 2)
        XCTAssertEqual(QGridSearch.average([1, 10], dropOutlier: true), 5.5, "fewer than 3 seeds: all kept")
        let search = try QGridSearch(grid: try QGridSearch.Grid.q(rate: 0.9), seeds: [0, 1, 2], dropOutlierSeed: true) { _, seed in
            seed == 2 ? 100 : Double(seed)
        }
        let point = try search.point(0.5)
        XCTAssertEqual(point.value, 0.5)
        XCTAssertEqual(point.seedValues, [0, 1, 100])
        let broken = try QGridSearch(grid: try QGridSearch.Grid.q(rate: 0.9), seeds: [0]) { _, _ in .nan }
        XCTAssertThrowsError(try broken.run()) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    }

    /// The search on a real model pair finds the q that brute force over the fine grid finds.
    func testTheSearchFindsTheBruteForceBestQOfAnEncoderPair() throws {
        let pair = try EncoderPairFixture()
        defer { pair.remove() }
        let tokenizer = try Tokenizer(path: pair.finetuned)
        let text = try CalibrationText(path: pair.unlabeled, tokenizer: tokenizer, sequenceLength: 32, maxSequences: 32)
        for p in [0.99, 0.999] {
            let search = try QSearch(basePath: pair.base, finetunedPath: pair.finetuned, rate: p, seeds: [0, 1],
                                     objective: .outputChange(text))
            let grid = try QGridSearch.Grid.q(rate: p)
            let found = try search.run(grid: grid)
            // Brute force: every point of the fine grid over the whole range.
            var best = (q: 1.0, value: Double.infinity)
            var q = grid.lower
            while q <= 1 + 1e-12 {
                let value = try search.value(q: q)
                if value < best.value { best = (q, value) }
                q *= grid.fineRatio
            }
            print("p = \(p): search q = \(found.best.q) (\(found.best.value)), brute force q = \(best.q) (\(best.value)), DARE \(found.dare!.value), \(found.curve.count) points")
            XCTAssertLessThanOrEqual(abs(log(found.best.q / best.q)), log(grid.fineRatio) * 1.01, "p = \(p)")
            XCTAssertLessThan(found.best.value, found.dare!.value)
        }
    }

    func testAnalyticalWithSearchedEtaBeatsEtaOne() throws {
        let pair = try EncoderPairFixture()
        defer { pair.remove() }
        let tokenizer = try Tokenizer(path: pair.finetuned)
        let records = try LabeledText(path: pair.validation, tokenizer: tokenizer, sequenceLength: 32)
        let search = try QSearch(basePath: pair.base, finetunedPath: pair.finetuned, rate: 0.999, seeds: [0, 1, 2],
                                 objective: .labeled(records, .accuracy))
        let statistics = try search.inputStatistics(CalibrationText(sequences: records.sequences))
        let analytical = try search.analytical(inputMean: { statistics.inputMean($0) })
        let atOne = analytical.qs(eta: 1)
        XCTAssertEqual(Set(atOne.keys), Set(search.prunable))
        let weight = "bert.encoder.layer.0.intermediate.dense.weight"
        XCTAssertEqual(atOne[weight.replacingOccurrences(of: "weight", with: "bias")], atOne[weight], "a bias uses its weight's q")
        var one = 0.0
        for seed in search.seeds { one += try search.score(search.prunedModel(q: { atOne[$0]! }, seed: seed)) }
        one /= 3
        let result = try search.runEta(grid: try QGridSearch.Grid(lower: 0.1, upper: 3)) { analytical.qs(eta: $0) }
        print("analytical: eta = 1 -> \(one); searched eta = \(result.best.q) -> \(result.best.value); DARE \(result.dare!.value)")
        XCTAssertGreaterThan(result.best.value, one)
    }

    /// Nothing assumes a full fine-tune: a LoRA-style pair (rank-2 deltas on query and value only,
    /// every other delta zero), searched through an adapter-like folder without config.json.
    func testALoRAStyleDeltaIsSearchedLikeAnyOther() throws {
        let pair = try EncoderPairFixture(deltaScale: 0.2, records: 200, loraModules: ["query", "value"])
        defer { pair.remove() }
        let weightsOnly = pair.folder + "/weights-only"
        try FileManager.default.createDirectory(atPath: weightsOnly, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: pair.finetuned + "/model.safetensors", toPath: weightsOnly + "/model.safetensors")
        let tokenizer = try Tokenizer(path: pair.finetuned)
        let records = try LabeledText(path: pair.validation, tokenizer: tokenizer, sequenceLength: 32)
        let search = try QSearch(basePath: pair.base, finetunedPath: weightsOnly, rate: 0.99, seeds: [0, 1],
                                 objective: .labeled(records, .accuracy))
        XCTAssertEqual(try search.finetunedScore(), 1)
        let result = try search.run()
        XCTAssertTrue(result.curve.allSatisfy { $0.value.isFinite })
        XCTAssertGreaterThan(result.best.value, result.dare!.value)
        let statistics = try search.inputStatistics(CalibrationText(sequences: records.sequences))
        let qs = try search.analytical(inputMean: { statistics.inputMean($0) }).qs(eta: 0.5)
        XCTAssertEqual(qs.count, search.prunable.count)
        XCTAssertTrue(qs.values.allSatisfy { $0.isFinite && $0 >= 0.01 - 1e-12 && $0 <= 1 }, "\(qs)")
        print("LoRA-style: best q \(result.best.q) -> \(result.best.value), DARE \(result.dare!.value)")
    }
}
