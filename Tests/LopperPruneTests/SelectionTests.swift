import XCTest
import LopperPrune

final class SelectionTests: XCTestCase {
    func testGlob() {
        XCTAssertTrue(Glob("*.mlp.*").matches("model.layers.3.mlp.up_proj.weight"))
        XCTAssertTrue(Glob("model.layers.[0-3].*").matches("model.layers.2.self_attn.q_proj.weight"))
        XCTAssertFalse(Glob("model.layers.[0-3].*").matches("model.layers.7.self_attn.q_proj.weight"))
        XCTAssertTrue(Glob("a?c").matches("abc"))
        XCTAssertFalse(Glob("a?c").matches("ac"))
        XCTAssertTrue(Glob("*").matches(""))
        XCTAssertFalse(Glob("*.bias").matches("x.weight"))
        XCTAssertTrue(Glob("*a*b*c").matches("xxaxxbxxbxc"))
    }

    func testDefaultSelectionFollowsThePapers() {
        let shapes: [String: [Int]] = [
            "model.embed_tokens.weight": [100, 8],
            "model.layers.0.self_attn.q_proj.weight": [8, 8],
            "model.layers.0.self_attn.q_proj.bias": [8],
            "model.layers.0.input_layernorm.weight": [8],
            "model.norm.weight": [8],
            "lm_head.weight": [100, 8],
            "bert.encoder.layer.1.attention.output.LayerNorm.bias": [8],
            "bert.encoder.layer.1.output.dense.bias": [8],
            "bert.encoder.layer.1.output.dense.weight": [8, 32],
            "classifier.weight": [2, 8],
        ]
        let selection = TensorSelection()
        func decide(_ name: String) -> TensorSelection.Decision { selection.decide(name: name) { shapes[$0] } }
        XCTAssertEqual(decide("model.layers.0.self_attn.q_proj.weight"), .prune)
        XCTAssertEqual(decide("model.layers.0.self_attn.q_proj.bias"), .prune)
        XCTAssertEqual(decide("bert.encoder.layer.1.output.dense.bias"), .prune)
        XCTAssertEqual(decide("bert.encoder.layer.1.output.dense.weight"), .prune)
        XCTAssertEqual(decide("model.embed_tokens.weight"), .keep("embedding"))
        XCTAssertEqual(decide("model.layers.0.input_layernorm.weight"), .keep("normalisation"))
        XCTAssertEqual(decide("bert.encoder.layer.1.attention.output.LayerNorm.bias"), .keep("normalisation"))
        XCTAssertEqual(decide("model.norm.weight"), .keep("normalisation"))
        XCTAssertEqual(decide("lm_head.weight"), .keep("output head"))
        XCTAssertEqual(decide("classifier.weight"), .keep("output head"))
    }

    func testIncludeAndExcludeGlobs() {
        let selection = TensorSelection(include: ["lm_head.*"], exclude: ["*.mlp.*"])
        let shapes: [String: [Int]] = ["lm_head.weight": [4, 4], "model.layers.0.mlp.up_proj.weight": [4, 4],
                                       "model.layers.0.mlp.up_proj.bias": [4], "model.layers.0.o_proj.weight": [4, 4],
                                       "model.layers.0.o_proj.bias": [4]]
        XCTAssertEqual(selection.decide(name: "lm_head.weight") { shapes[$0] }, .prune)
        XCTAssertEqual(selection.decide(name: "model.layers.0.mlp.up_proj.weight") { shapes[$0] }, .keep("excluded by *.mlp.*"))
        // A bias follows its weight: excluding the weight keeps the bias too.
        let weightOnly = TensorSelection(exclude: ["*.o_proj.weight"])
        XCTAssertEqual(weightOnly.decide(name: "model.layers.0.o_proj.bias") { shapes[$0] }, .keep("its weight is kept (excluded by *.o_proj.weight)"))
        XCTAssertEqual(weightOnly.decide(name: "model.layers.0.mlp.up_proj.bias") { shapes[$0] }, .prune)
    }

    func testLayerIndex() {
        XCTAssertEqual(layerIndex(of: "model.layers.12.mlp.up_proj.weight"), 12)
        XCTAssertEqual(layerIndex(of: "bert.encoder.layer.3.output.dense.weight"), 3)
        XCTAssertNil(layerIndex(of: "lm_head.weight"))
    }

    func testScheduleInterpolatesOverLayers() {
        let schedule = Schedule(parsing: "[0.9, 0.99]")!
        XCTAssertEqual(schedule.value(layer: 0, layerCount: 10), 0.9, accuracy: 1e-12)
        XCTAssertEqual(schedule.value(layer: 9, layerCount: 10), 0.99, accuracy: 1e-12)
        XCTAssertEqual(schedule.value(layer: 3, layerCount: 10), 0.9 + 0.09 * 3 / 9, accuracy: 1e-12)
        let three = Schedule(parsing: "[0, 1, 0]")!
        XCTAssertEqual(three.value(layer: 2, layerCount: 5), 1, accuracy: 1e-12)
        XCTAssertEqual(three.value(layer: 1, layerCount: 5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(Schedule(parsing: " 0.5 "), .constant(0.5))
        XCTAssertNil(Schedule(parsing: "[0.5, x]"))
        XCTAssertNil(Schedule(parsing: "abc"))
    }
}
