import Foundation
import LopperCore
import LopperIO
import LopperModels
import XCTest

/// Forward passes against outputs computed by transformers (Scripts/make_model_fixtures.py).
final class ModelTests: XCTestCase {
    static var fixtures: String { Bundle.module.resourceURL!.appendingPathComponent("Fixtures/models").path }
    /// The model's HF folder; expected.safetensors and inputs.json lie one level up.
    static func folder(_ name: String) -> String { fixtures + "/" + name + "/model" }

    static func inputs(_ name: String) throws -> [[Int]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: folder(name) + "/../inputs.json"))
        let json = try data.withUnsafeBytes { try JSON.parse($0) }
        guard case .array(let sequences)? = json["inputs"] else { throw ModelError.badInput("inputs.json") }
        return sequences.map { sequence in
            guard case .array(let ids) = sequence else { return [] }
            return ids.compactMap { if case .number(let v, _) = $0 { return Int(v) } else { return nil } }
        }
    }

    /// max |actual - expected| / max |expected| over the tensor.
    func assertClose(_ actual: Tensor, _ expected: Tensor, _ label: String, tolerance: Float = 1e-4,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let a = actual.floats(), e = expected.floats()
        let scale = e.map { abs($0) }.max() ?? 0
        let error = zip(a, e).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(scale, 0, label, file: file, line: line)
        XCTAssertLessThanOrEqual(error / scale, tolerance, "\(label): max error \(error), max |expected| \(scale)",
                                 file: file, line: line)
    }

    /// Runs the fixture's inputs as one ragged batch and compares every expected tensor.
    func checkFixture(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try loadModel(folder: Self.folder(name))
        let inputs = try Self.inputs(name)
        XCTAssertEqual(inputs.map(\.count), [1, 5, 17])
        let expected = try SafetensorsFile(path: Self.folder(name) + "/../expected.safetensors")
        let output = try model.forward(inputs)
        XCTAssertEqual(output.hidden.count, inputs.count)
        var compared = 0
        for i in inputs.indices {
            assertClose(output.hidden[i], try expected.tensor("hidden.\(i)"), "\(name) hidden.\(i)", file: file, line: line)
            compared += 1
            if expected.info("logits.\(i)") != nil {
                guard let logits = output.logits else { XCTFail("\(name): no logits", file: file, line: line); return }
                assertClose(logits[i], try expected.tensor("logits.\(i)"), "\(name) logits.\(i)", file: file, line: line)
                compared += 1
            }
            if expected.info("pooled.\(i)") != nil {
                guard let pooled = output.pooled else { XCTFail("\(name): no pooled output", file: file, line: line); return }
                assertClose(pooled[i], try expected.tensor("pooled.\(i)"), "\(name) pooled.\(i)", file: file, line: line)
                compared += 1
            }
        }
        XCTAssertEqual(compared, expected.names.count, "\(name): every expected tensor compared", file: file, line: line)
    }

    func testLlama() throws { try checkFixture("llama") }
    func testLlamaBF16() throws { try checkFixture("llama_bf16") }
    func testLlamaLinearRope() throws { try checkFixture("llama_rope_linear") }
    func testLlama3RopeWithTiedEmbeddings() throws { try checkFixture("llama3_rope") }
    func testQwen2() throws { try checkFixture("qwen2") }
    func testMistralSlidingWindow() throws {
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("mistral_window")).slidingWindow, 4)
        try checkFixture("mistral_window")
    }
    func testBert() throws { try checkFixture("bert") }
    func testBertClassifier() throws { try checkFixture("bert_classifier") }
    func testRobertaClassifier() throws { try checkFixture("roberta_classifier") }

    /// A packed batch of ragged sequences gives what running each sequence alone gives.
    func checkBatchMatchesOneByOne(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try loadModel(folder: Self.folder(name))
        let fixture = try Self.inputs(name)
        let vocab = model.config.vocabSize
        // lengths 17, 1, 9, 5, 12, 3 (longer than Mistral's window of 4), ids from the fixture
        let batch = [fixture[2], fixture[0], Array(fixture[2].prefix(9)), fixture[1],
                     fixture[2].suffix(12).map { ($0 * 7 + 3) % vocab }, Array(fixture[1].prefix(3))]
        let packed = try model.forward(batch)
        XCTAssertEqual(packed.hidden.count, batch.count, file: file, line: line)
        for (i, sequence) in batch.enumerated() {
            let alone = try model.forward([sequence])
            assertClose(packed.hidden[i], alone.hidden[0], "\(name) batch hidden.\(i)", tolerance: 1e-5, file: file, line: line)
            XCTAssertEqual(packed.logits == nil, alone.logits == nil, file: file, line: line)
            if let logits = packed.logits, let expected = alone.logits {
                assertClose(logits[i], expected[0], "\(name) batch logits.\(i)", tolerance: 1e-5, file: file, line: line)
            }
            XCTAssertEqual(packed.pooled == nil, alone.pooled == nil, file: file, line: line)
            if let pooled = packed.pooled, let expected = alone.pooled {
                assertClose(pooled[i], expected[0], "\(name) batch pooled.\(i)", tolerance: 1e-5, file: file, line: line)
            }
        }
    }

    func testPackedBatchMatchesOneByOne() throws {
        for name in ["llama", "qwen2", "mistral_window", "bert", "bert_classifier", "roberta_classifier"] {
            try checkBatchMatchesOneByOne(name)
        }
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("mistral_window")).slidingWindow, 4)
        // empty sequences in a batch keep their place
        let model = try loadModel(folder: Self.folder("llama"))
        let output = try model.forward([[3, 4], [], [5]])
        XCTAssertEqual(output.hidden.map(\.shape), [[2, 32], [0, 32], [1, 32]])
        XCTAssertEqual(output.logits?.map(\.shape), [[2, 128], [0, 128], [1, 128]])
        assertClose(output.hidden[2], try model.forward([[5]]).hidden[0], "llama [5] after an empty sequence", tolerance: 1e-5)
    }

    func testConfigs() throws {
        let llama = try ModelConfig.load(folder: Self.folder("llama"))
        XCTAssertEqual(llama.architecture, .llama)
        XCTAssertEqual(llama.numKeyValueHeads, 2)
        XCTAssertEqual(llama.rope, RopeConfig(theta: 10000, kind: .plain))
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("llama_rope_linear")).rope, RopeConfig(theta: 10000, kind: .linear(factor: 2)))
        // 4.x spelling: rope_theta + rope_scaling
        let llama3 = try ModelConfig.load(folder: Self.folder("llama3_rope"))
        XCTAssertEqual(llama3.rope, RopeConfig(theta: 500000, kind: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64)))
        XCTAssertTrue(llama3.tieWordEmbeddings)
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("qwen2")).modelType, "qwen2")
        let roberta = try ModelConfig.load(folder: Self.folder("roberta_classifier"))
        XCTAssertEqual(roberta.architecture, .bert)
        XCTAssertEqual(roberta.positionOffset, 2)
        XCTAssertNil(roberta.numLabels)  // transformers leaves out the default 2 labels; the head's shape says it
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("bert_classifier")).numLabels, 3)
        XCTAssertEqual(try ModelConfig.load(folder: Self.folder("bert")).positionOffset, 0)
    }

    /// Every linear layer is observed once per (packed) batch with [total tokens, in_features]
    /// F32 inputs; the pooler and classifiers with one [CLS] row per sequence.
    func checkObserver(_ name: String, linearNames: (String) -> Bool) throws {
        let checkpoint = try Checkpoint(path: Self.folder(name))
        let expectedNames = Set(checkpoint.names.filter { checkpoint.info($0)!.shape.count == 2 && linearNames($0) })
        XCTAssertFalse(expectedNames.isEmpty)
        let model = try loadModel(folder: Self.folder(name))
        var seen: [String: [[Int]]] = [:]
        model.linearInputObserver = { name, x in
            XCTAssertEqual(x.dtype, .f32)
            seen[name, default: []].append(x.shape)
        }
        let inputs = [[5, 6, 7], [9]]
        _ = try model.forward(inputs)
        XCTAssertEqual(Set(seen.keys), expectedNames, name)
        for (weightName, shapes) in seen {
            let inFeatures = checkpoint.info(weightName)!.shape[1]
            let rows = weightName.contains("pooler") || weightName.hasPrefix("classifier") ? inputs.count : inputs.map(\.count).reduce(0, +)
            XCTAssertEqual(shapes, [[rows, inFeatures]], weightName)
        }
    }

    func testObserverSeesEveryLinearLayer() throws {
        try checkObserver("llama") { !$0.contains("embed_tokens") }                       // includes lm_head
        try checkObserver("qwen2") { !$0.contains("embed_tokens") }                       // tied head: not observed
        try checkObserver("bert_classifier") { !$0.contains("embeddings.") }              // pooler + classifier
        try checkObserver("roberta_classifier") { !$0.contains("embeddings.") }           // classifier.dense + out_proj
    }

    func testMissingTensorsAreAllListed() throws {
        let checkpoint = try Checkpoint(path: Self.folder("llama"))
        let gone: Set = ["model.layers.1.mlp.up_proj.weight", "model.norm.weight", "lm_head.weight"]
        XCTAssertThrowsError(try loadModel(folder: Self.folder("llama")) { name in
            if gone.contains(name) { throw ModelError.badInput("no \(name)") }
            return try checkpoint.tensor(name)
        }) { error in
            guard case ModelError.missingTensors(let names) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(Set(names), gone)
            for name in gone { XCTAssertTrue("\(error)".contains(name), "\(error)") }
        }
    }

    func testWeightsOverrideIsUsed() throws {
        let checkpoint = try Checkpoint(path: Self.folder("llama"))
        let model = try loadModel(folder: Self.folder("llama")) { name in
            let t = try checkpoint.tensor(name)
            return name == "lm_head.weight" ? try Tensor(zeros: t.shape) : t
        }
        let output = try model.forward([[3, 4]])
        XCTAssertEqual(output.logits![0].floats(), [Float](repeating: 0, count: 2 * 128))
        let reference = try loadModel(folder: Self.folder("llama")).forward([[3, 4]])
        XCTAssertEqual(output.hidden[0].floats(), reference.hidden[0].floats())
    }

    func testUnsupportedArchitectureNamesWhatConfigSays() throws {
        let folder = NSTemporaryDirectory() + "lopper-gpt2-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try #"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 32}"#
            .write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try loadModel(folder: folder)) { error in
            let text = "\(error)"
            guard case ModelError.unsupportedArchitecture = error else { return XCTFail(text) }
            for word in ["gpt2", "GPT2LMHeadModel", "llama", "qwen2", "bert", "roberta"] {
                XCTAssertTrue(text.contains(word), text)
            }
        }
    }

    func testBadTokenIdIsAnError() throws {
        let model = try loadModel(folder: Self.folder("bert"))
        XCTAssertThrowsError(try model.forward([[1, 128]]))
        XCTAssertThrowsError(try model.forward([[]]))  // the pooler needs a [CLS] token
        XCTAssertEqual(try loadModel(folder: Self.folder("llama")).forward([[]]).hidden[0].shape, [0, 32])
    }
}
