import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import LopperCore
import LopperIO
import LopperPrune

/// `lopper diff` statistics on small checkpoints whose deltas are known in closed form:
/// base weights are all w0 = 1/16, and layer L's delta alternates +a_L, -a_L with
/// a_L = (L + 1) * unit. Every selected tensor has an even count, so per layer the delta
/// has mean 0, std a_L, mean |delta| a_L, max |delta| a_L, and mean |W1| = w0. All values
/// are exact in BF16 (multiples of 2^-11 near 1/16).
final class DiffTests: XCTestCase {
    static let w0: Float = 1.0 / 16
    static let smallUnit: Float = 1.0 / 2048   // mean |delta| / |W| = 1.6%: small
    static let largeUnit: Float = 1.0 / 64     // mean |delta| / |W| = 50%: large
    static let tinyUnit: Float = 1.0 / 16384   // mean |delta| / |W| = 0.2%: as AdamR-L2 leaves it

    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lopper-diff-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// Names, shapes and dtypes: three blocks with BF16 attention and F32 MLP, plus kept tensors.
    static func layout() -> [(String, [Int], DType)] {
        var entries: [(String, [Int], DType)] = [("model.embed_tokens.weight", [10, 4], .f32)]
        for layer in 0...2 {
            let prefix = "model.layers.\(layer)."
            entries += [(prefix + "self_attn.q_proj.weight", [4, 4], .bf16), (prefix + "self_attn.q_proj.bias", [4], .f32),
                        (prefix + "mlp.up_proj.weight", [8, 4], .f32), (prefix + "input_layernorm.weight", [4], .f32)]
        }
        return entries + [("model.norm.weight", [4], .f32), ("lm_head.weight", [10, 4], .bf16)]
    }

    /// The base as one file, the fine-tuned model as a sharded folder with index.
    func makePair(unit: Float, shapeOverride: [String: [Int]] = [:], dropFromBase: String? = nil) throws -> (base: Checkpoint, finetuned: Checkpoint) {
        var base: [(String, Tensor)] = [], finetuned: [(String, Tensor)] = []
        for (name, shape, dtype) in Self.layout() {
            let count = shape.reduce(1, *)
            let a = layerIndex(of: name).map { Float($0 + 1) * unit } ?? 0
            let baseShape = shapeOverride[name] ?? shape
            if name != dropFromBase {
                base.append((name, Tensor([Float](repeating: Self.w0, count: baseShape.reduce(1, *)), shape: baseShape, dtype: dtype)))
            }
            let values = (0..<count).map { Self.w0 + ($0 % 2 == 0 ? a : -a) }
            finetuned.append((name, Tensor(values, shape: shape, dtype: dtype)))
        }
        try saveSafetensors(base, to: folder + "/base.safetensors")
        let writer = try ShardedWriter(folder: folder + "/finetuned",
                                       entries: finetuned.map { .init(name: $0.0, dtype: $0.1.dtype, shape: $0.1.shape) },
                                       maxShardBytes: 200)
        for (name, tensor) in finetuned { try writer.write(tensor, name: name) }
        try writer.finish()
        return (try Checkpoint(path: folder + "/base.safetensors"), try Checkpoint(path: folder + "/finetuned"))
    }

    func testPerLayerFiguresAreExact() throws {
        let unit = Double(Self.smallUnit)
        let (base, finetuned) = try makePair(unit: Self.smallUnit)
        XCTAssertGreaterThan(finetuned.shards.count, 1)
        let statistics = try DeltaStatistics.compute(base: base, finetuned: finetuned)
        XCTAssertEqual(statistics.layers.map(\.name), ["0", "1", "2"])
        XCTAssertEqual(statistics.tensors.count, 9)
        XCTAssertEqual(statistics.keptTensors, 6)   // embedding, three layer norms, final norm, lm_head
        for (index, layer) in statistics.layers.enumerated() {
            let a = Double(index + 1) * unit
            XCTAssertEqual(layer.tensors, 3)
            XCTAssertEqual(layer.figures.count, 16 + 4 + 32)
            XCTAssertEqual(layer.figures.mean, 0, accuracy: 1e-12)
            XCTAssertEqual(layer.figures.std, a, accuracy: a * 1e-6)
            XCTAssertEqual(layer.figures.meanAbs, a, accuracy: a * 1e-6)
            XCTAssertEqual(layer.figures.maxAbs, a, accuracy: a * 1e-6)
            XCTAssertEqual(layer.figures.l2, a * Double(52).squareRoot(), accuracy: a * 1e-5)
            XCTAssertEqual(layer.figures.weightMeanAbs, Double(Self.w0), accuracy: 1e-9)
            XCTAssertEqual(layer.figures.relativeSize, a / Double(Self.w0), accuracy: 1e-6)
        }
        let total = statistics.total
        XCTAssertEqual(total.count, 156)
        XCTAssertEqual(total.meanAbs, 2 * unit, accuracy: unit * 1e-6)
        XCTAssertEqual(total.std, unit * (14.0 / 3).squareRoot(), accuracy: unit * 1e-6)
        XCTAssertEqual(total.maxAbs, 3 * unit, accuracy: unit * 1e-6)
        XCTAssertEqual(total.l2, unit * (52.0 * 14).squareRoot(), accuracy: unit * 1e-5)
        let q = statistics.tensors.first { $0.name == "model.layers.2.self_attn.q_proj.weight" }!
        XCTAssertEqual(q.dtype, "BF16")
        XCTAssertEqual(q.layer, 2)
        XCTAssertEqual(q.figures.std, 3 * unit, accuracy: unit * 1e-6)
    }

    func testPoolingAddsTheSpreadOfTensorMeans() {
        // +c everywhere and -c everywhere: each has std 0, together mean 0 and std c.
        let plus = DeltaFigures(count: 4, mean: 0.5, std: 0, meanAbs: 0.5, maxAbs: 0.5, l2: 1, weightMeanAbs: 1)
        let minus = DeltaFigures(count: 4, mean: -0.5, std: 0, meanAbs: 0.5, maxAbs: 0.5, l2: 1, weightMeanAbs: 1)
        let pooled = DeltaFigures(pooling: [plus, minus])
        XCTAssertEqual(pooled.mean, 0, accuracy: 1e-15)
        XCTAssertEqual(pooled.std, 0.5, accuracy: 1e-15)
        XCTAssertEqual(pooled.l2, 2.0.squareRoot(), accuracy: 1e-15)
        // Unequal counts weight the means: 3 x 1 and 1 x 5 -> mean 2, variance (3*1 + 9)/4 = 3.
        let three = DeltaFigures(count: 3, mean: 1, std: 0, meanAbs: 1, maxAbs: 1, l2: 3.0.squareRoot(), weightMeanAbs: 2)
        let one = DeltaFigures(count: 1, mean: 5, std: 0, meanAbs: 5, maxAbs: 5, l2: 5, weightMeanAbs: 2)
        let weighted = DeltaFigures(pooling: [three, one])
        XCTAssertEqual(weighted.mean, 2, accuracy: 1e-12)
        XCTAssertEqual(weighted.std, 3.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(weighted.maxAbs, 5)
        XCTAssertEqual(weighted.relativeSize, 1, accuracy: 1e-12)
    }

    func testRecommendationFollowsTheDecisionFlow() throws {
        let (smallBase, smallFinetuned) = try makePair(unit: Self.smallUnit)
        let small = try DeltaStatistics.compute(base: smallBase, finetuned: smallFinetuned)
        let extreme = MethodRecommendation(statistics: small, rate: 0.99)
        XCTAssertEqual(extreme.method, .darexQ)
        XCTAssertFalse(extreme.largeDeltas)
        XCTAssertTrue(extreme.explanation.contains("p = 0.990"), extreme.explanation)
        XCTAssertTrue(extreme.explanation.contains("1/(1-p) = 100"), extreme.explanation)
        XCTAssertEqual(MethodRecommendation(statistics: small, rate: 0.9).method, .darexQ)
        let moderate = MethodRecommendation(statistics: small, rate: 0.5)
        XCTAssertEqual(moderate.method, .dare)
        XCTAssertEqual(moderate.plugins, ["dare"])

        try FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (tinyBase, tinyFinetuned) = try makePair(unit: Self.tinyUnit)
        let tiny = try DeltaStatistics.compute(base: tinyBase, finetuned: tinyFinetuned)
        XCTAssertLessThan(tiny.total.relativeSize, MethodRecommendation.adamRRelativeDelta)
        let adamR = MethodRecommendation(statistics: tiny, rate: 0.99)
        XCTAssertEqual(adamR.method, .darexL2)
        XCTAssertEqual(adamR.plugins, ["darex_l2", "darex_q"])
        XCTAssertTrue(adamR.explanation.contains("AdamR-L2"), adamR.explanation)
        XCTAssertEqual(MethodRecommendation(statistics: tiny, rate: 0.5).method, .dare)

        try FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (largeBase, largeFinetuned) = try makePair(unit: Self.largeUnit)
        let large = try DeltaStatistics.compute(base: largeBase, finetuned: largeFinetuned)
        for rate in [0.5, 0.99] {
            let recommendation = MethodRecommendation(statistics: large, rate: rate)
            XCTAssertEqual(recommendation.method, .importanceBased)
            XCTAssertEqual(recommendation.plugins, ["magnitude", "wanda"])
            XCTAssertTrue(recommendation.explanation.contains("50.00% of mean |W| = 0.0625"), recommendation.explanation)
            XCTAssertTrue(recommendation.explanation.contains("3 of 3 layer rows are large"), recommendation.explanation)
        }
    }

    func testIncludeAndExcludeChangeTheRows() throws {
        let (base, finetuned) = try makePair(unit: Self.smallUnit)
        let selection = TensorSelection(include: ["lm_head.weight"], exclude: ["*.mlp.*"])
        let statistics = try DeltaStatistics.compute(base: base, finetuned: finetuned, selection: selection)
        XCTAssertEqual(statistics.layers.map(\.name), ["0", "1", "2", DeltaStatistics.otherLayerName])
        XCTAssertEqual(statistics.layers.map(\.tensors), [2, 2, 2, 1])
        XCTAssertEqual(statistics.layers.last!.figures.meanAbs, 0)   // lm_head is unchanged
        XCTAssertNil(statistics.layers.last!.layer)
        XCTAssertThrowsError(try DeltaStatistics.compute(base: base, finetuned: finetuned,
                                                         selection: TensorSelection(exclude: ["*"]))) { error in
            XCTAssertTrue("\(error)".contains("no tensor of"), "\(error)")
        }
    }

    /// diff and prune take the same tensors under --include/--exclude: a bias follows its
    /// weight, so excluding a weight excludes its bias too.
    func testDiffAndPruneSelectTheSameTensors() throws {
        let (base, finetuned) = try makePair(unit: Self.smallUnit)
        for selection in [TensorSelection(), TensorSelection(exclude: ["*.up_proj.weight"]),
                          TensorSelection(include: ["*embed*"], exclude: ["*.layers.1.*"])] {
            let diffed = try DeltaStatistics.compute(base: base, finetuned: finetuned, selection: selection).tensors.map(\.name)
            var configuration = PruneConfiguration(basePath: base.path, finetunedPath: finetuned.path, outputPath: folder + "/never")
            configuration.selection = selection
            let planned = try Pruner(configuration, method: Identity()).plan.filter(\.isPruned).map(\.name)
            XCTAssertEqual(diffed, planned)
            if !selection.exclude.isEmpty, selection.include.isEmpty {
                XCTAssertFalse(planned.contains { $0.hasSuffix("up_proj.bias") || $0.hasSuffix("up_proj.weight") }, "\(planned)")
            }
        }
    }

    func testShapeMismatchAndMissingTensorNameTheTensor() throws {
        let name = "model.layers.1.mlp.up_proj.weight"
        let (base, finetuned) = try makePair(unit: Self.smallUnit, shapeOverride: [name: [4, 8]])
        XCTAssertThrowsError(try DeltaStatistics.compute(base: base, finetuned: finetuned)) { error in
            XCTAssertEqual("\(error)", "tensor \"\(name)\": shape [8,4] in \(finetuned.path) vs [4,8] in \(base.path)")
        }
        try FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (partial, full) = try makePair(unit: Self.smallUnit, dropFromBase: name)
        XCTAssertThrowsError(try DeltaStatistics.compute(base: partial, finetuned: full)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(partial.path): no tensor \"\(name)\""), "\(error)")
        }
    }

    func testTextJSONAndSVG() throws {
        let (base, finetuned) = try makePair(unit: Self.smallUnit)
        let statistics = try DeltaStatistics.compute(base: base, finetuned: finetuned)
        let report = DiffReport(base: base.path, finetuned: finetuned.path, statistics: statistics, rate: 0.5)
        let text = report.text()
        XCTAssertTrue(text.contains("layer  tensors  params"), text)
        XCTAssertTrue(text.contains("total: 9 tensors, 156 parameters"), text)
        XCTAssertTrue(text.hasSuffix(report.recommendation.explanation))
        let object = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as! [String: Any]
        XCTAssertEqual((object["recommendation"] as! [String: Any])["method"] as? String, "dare")
        let stats = object["statistics"] as! [String: Any]
        XCTAssertEqual((stats["tensors"] as! [[String: Any]]).count, 9)
        XCTAssertEqual((stats["layers"] as! [[String: Any]]).count, 3)

        let path = folder + "/plot.svg"
        try DeltaPlot(layers: statistics.layers).write(to: path)
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</svg>"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(svg.contains("mean |delta|") && svg.contains("std of delta"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp") }, [])
        XCTAssertNoThrow(try XMLDocument(xmlString: svg))
    }

    func testNiceTicksCoverTheMaximum() {
        for maximum in [1e-5, 0.00293, 0.0469, 1, 7.3, 12345.0] {
            let (step, count) = DeltaPlot.niceTicks(upTo: maximum)
            XCTAssertGreaterThanOrEqual(step * Double(count), maximum * (1 - 1e-9))
            XCTAssertLessThanOrEqual(count, 10)
        }
    }
}

/// A method that keeps every delta: enough to plan a run.
final class Identity: PruneMethod {
    let name = "identity", version = "1"
    let schema = ParamSchema(method: "identity", specs: [])
    func prune(_ job: PruneJob) throws -> PruneOutcome { PruneOutcome(.unchanged) }
}
