import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperModels

/// Model folders for the model API tests: a fixture model (Tests/LopperModelsTests/Fixtures)
/// copied into a temporary folder with a small WordPiece tokenizer whose ids (< 57)
/// fit every fixture's vocabulary.
struct ModelFolders {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-model-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LopperModelsTests/Fixtures/models").path
    }

    /// A copy of fixture `name` (with the test tokenizer unless `tokenizer` is false).
    func model(_ name: String, tokenizer: Bool = true) throws -> String {
        let folder = root + "/" + name + (tokenizer ? "" : "-bare")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Self.fixtures + "/\(name)/model/" + file, toPath: folder + "/" + file)
        }
        if tokenizer { try Self.tokenizerJSON.write(toFile: folder + "/tokenizer.json", atomically: true, encoding: .utf8) }
        return folder
    }

    /// Lowercasing WordPiece over single letters: `[UNK]` 0, `[CLS]` 1, `[SEP]` 2, a-z 3-28, ##a-##z 29-54, "." 55, "," 56.
    static let tokenizerJSON: String = {
        var vocab: [String: Int] = ["[UNK]": 0, "[CLS]": 1, "[SEP]": 2, ".": 55, ",": 56]
        for (index, letter) in "abcdefghijklmnopqrstuvwxyz".enumerated() {
            vocab[String(letter)] = 3 + index
            vocab["##" + String(letter)] = 29 + index
        }
        let root: [String: Any] = [
            "version": "1.0", "added_tokens": [Any](), "normalizer": ["type": "Lowercase"],
            "pre_tokenizer": ["type": "BertPreTokenizer"], "post_processor": NSNull(),
            "decoder": ["type": "WordPiece", "prefix": "##", "cleanup": true],
            "model": ["type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab],
        ]
        let data = try! JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }()
}

final class ModelLuaTests: XCTestCase {
    var folders: ModelFolders!
    var lua: LuaState!

    override func setUpWithError() throws {
        folders = try ModelFolders()
        lua = try LuaState()
    }

    override func tearDown() {
        lua?.close()
        folders?.remove()
    }

    func assertEqual(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(what): missing tensor", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        XCTAssertEqual(a.floats(), b.floats(), what, file: file, line: line)
    }

    func assertLuaError(_ code: String, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try lua.run(code), file: file, line: line) { error in
            let message = (error as? LuaError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains(text), "'\(message)' does not contain '\(text)'", file: file, line: line)
        }
    }

    func testForwardThroughLuaEqualsSwift() throws {
        let dir = try folders.model("llama")
        lua.setGlobal("dir", .string(dir))
        let values = try lua.run("""
            local m = lopper.model(dir)
            local out = m:forward({"Hello world.", "the cat, sat"})
            local ids = m:forward({{1, 2, 3, 40}})
            local flat = m:forward(m:encode("hello"))
            return #out, out[1].hidden, out[1].logits, out[2].logits, out[1].pooled == nil, ids[1].logits, flat[1].logits, tostring(m)
            """)
        let model = try loadModel(folder: dir)
        let tokenizer = try Tokenizer(path: dir)
        let swift = try model.forward([tokenizer.encode("Hello world."), tokenizer.encode("the cat, sat")])
        XCTAssertEqual(values[0].number, 2)
        assertEqual(values[1].tensor, swift.hidden[0], "hidden 1")
        assertEqual(values[2].tensor, swift.logits?[0], "logits 1")
        assertEqual(values[3].tensor, swift.logits?[1], "logits 2")
        XCTAssertEqual(values[4].boolean, true)
        assertEqual(values[5].tensor, try model.forward([[1, 2, 3, 40]]).logits?[0], "ids")
        assertEqual(values[6].tensor, try model.forward([tokenizer.encode("hello")]).logits?[0], "flat ids")
        XCTAssertEqual(values[2].tensor?.shape, [tokenizer.encode("Hello world.").count, 128])
        XCTAssertTrue(values[7].string?.hasPrefix("Model(llama decoder: 2 layers, hidden 32, vocab 128") == true, values[7].string ?? "")
    }

    func testEncoderForwardHasPooledOutput() throws {
        let dir = try folders.model("bert")
        lua.setGlobal("dir", .string(dir))
        let values = try lua.run("""
            local m = lopper.model(dir)
            local out = m:forward("the quick brown fox")
            return out[1].hidden, out[1].pooled, out[1].logits == nil, m:config().kind, m:config().vocab_size
            """)
        let model = try loadModel(folder: dir)
        let swift = try model.forward([try Tokenizer(path: dir).encode("the quick brown fox")])
        assertEqual(values[0].tensor, swift.hidden[0], "hidden")
        assertEqual(values[1].tensor, swift.pooled?[0], "pooled")
        XCTAssertEqual(values[2].boolean, true)
        XCTAssertEqual(values[3].string, "encoder")
        XCTAssertEqual(values[4].number, 128)
    }

    func testClassifierAndBF16Models() throws {
        lua.setGlobal("classifier", .string(try folders.model("bert_classifier")))
        lua.setGlobal("bf16", .string(try folders.model("llama_bf16", tokenizer: false)))
        let values = try lua.run("""
            local out = lopper.model(classifier):forward({"a cat", {1, 7, 2}})
            local m = lopper.model(bf16)
            return out[1].logits:shape()[1], out[2].logits:shape()[1], lopper.model(classifier):config().num_labels,
                   m:forward({{1, 2, 3}})[1].logits, tostring(m)
            """)
        let labels = try loadModel(folder: folders.root + "/bert_classifier").config.numLabels
        XCTAssertEqual(values[0].number, Double(labels ?? -1))
        XCTAssertEqual(values[1].number, Double(labels ?? -1))
        XCTAssertEqual(values[2].number, Double(labels ?? -1))
        assertEqual(values[3].tensor, try loadModel(folder: folders.root + "/llama_bf16-bare").forward([[1, 2, 3]]).logits?[0], "bf16")
        XCTAssertTrue(values[4].string?.contains("no tokenizer") == true)
    }

    func testEncodeDecodeAndConfig() throws {
        lua.setGlobal("dir", .string(try folders.model("qwen2")))
        let values = try lua.run("""
            local m = lopper.model(dir)
            local c = m:config()
            return m:decode(m:encode("hello world")), #m:encode("ab"), c.model_type, c.kind, c.vocab_size, c.num_layers,
                   c.tie_word_embeddings, c.has_tokenizer, c.architectures[1]
            """)
        XCTAssertEqual(values[0].string, "hello world")
        XCTAssertEqual(values[1].number, 2)
        XCTAssertEqual(values[2].string, "qwen2")
        XCTAssertEqual(values[3].string, "decoder")
        XCTAssertEqual(values[4].number, 160)
        XCTAssertEqual(values[5].number, 2)
        XCTAssertEqual(values[6].boolean, true)
        XCTAssertEqual(values[7].boolean, true)
        XCTAssertEqual(values[8].string, "Qwen2ForCausalLM")
    }

    func testWeightOverridesAndOutputChange() throws {
        let dir = try folders.model("llama")
        lua.setGlobal("dir", .string(dir))
        let name = "model.layers.0.mlp.down_proj.weight"
        let values = try lua.run("""
            local name = "\(name)"
            local texts = {"hello world", "the quick brown fox, jumps"}
            local m = lopper.model(dir)
            local ck = lopper.load(dir)
            local zeroed = lopper.model(dir, {[name] = lopper.zeros(ck[name]:shape())})
            local same = lopper.model(dir, ck)
            local asked = {}
            local viaFunction = lopper.model(dir, function(n) asked[#asked + 1] = n; if n == name then return ck[n] * 0 end end)
            return lopper.output_change(m, m, texts), lopper.output_change(zeroed, m, texts),
                   lopper.output_change(same, m, texts), lopper.output_change(viaFunction, m, texts),
                   lopper.output_change(m, zeroed, {{1, 5, 9}}),
                   zeroed:forward("hello")[1].logits, tostring(zeroed), #asked
            """)
        XCTAssertEqual(values[0].number, 0)
        let changed = try XCTUnwrap(values[1].number)
        XCTAssertGreaterThan(changed, 0)
        XCTAssertEqual(values[2].number, 0)
        XCTAssertEqual(values[3].number, changed)
        XCTAssertGreaterThan(values[4].number ?? 0, 0)
        XCTAssertTrue(values[6].string?.contains("1 tensor overridden") == true, values[6].string ?? "")
        XCTAssertGreaterThanOrEqual(values[7].number ?? 0, 21, "the function is asked for every tensor")

        // The same in Swift.
        let checkpoint = try Checkpoint(path: dir)
        let pruned = try loadModel(folder: dir) { n in
            n == name ? try Tensor(zeros: [32, 96]) : try checkpoint.tensor(n)
        }
        let reference = try loadModel(folder: dir)
        let tokenizer = try Tokenizer(path: dir)
        let text = CalibrationText(sequences: [tokenizer.encode("hello world"), tokenizer.encode("the quick brown fox, jumps")])
        XCTAssertEqual(try OutputChange.between(pruned, reference, on: text), changed, accuracy: 1e-12)
        assertEqual(values[5].tensor, try pruned.forward([tokenizer.encode("hello")]).logits?[0], "overridden logits")
    }

    func testPerplexityMatchesSwift() throws {
        let dir = try folders.model("mistral_window")
        lua.setGlobal("dir", .string(dir))
        let values = try lua.run("""
            local m = lopper.model(dir)
            local ppl, tokens = m:perplexity({"hello world, how are you", "the cat sat on the mat."})
            local ids = m:perplexity({{1, 2, 3, 4, 5}, {7}})
            return ppl, tokens, ids
            """)
        let model = try loadModel(folder: dir)
        let tokenizer = try Tokenizer(path: dir)
        let sequences = [tokenizer.encode("hello world, how are you"), tokenizer.encode("the cat sat on the mat.")]
        XCTAssertEqual(try XCTUnwrap(values[0].number), try perplexity(model, on: CalibrationText(sequences: sequences)), accuracy: 1e-9)
        XCTAssertEqual(values[1].number, Double(sequences.reduce(0) { $0 + $1.count - 1 }))
        XCTAssertEqual(try XCTUnwrap(values[2].number), try perplexity(model, on: CalibrationText(sequences: [[1, 2, 3, 4, 5], [7]])), accuracy: 1e-9)
    }

    func testErrorsNameTheFunctionAndTheProblem() throws {
        let llama = try folders.model("llama"), bare = try folders.model("llama", tokenizer: false), bert = try folders.model("bert")
        lua.setGlobal("llama", .string(llama))
        lua.setGlobal("bare", .string(bare))
        lua.setGlobal("bert", .string(bert))
        let name = "model.layers.0.mlp.down_proj.weight"
        assertLuaError("lopper.model(bare):forward('hello')", contains: "forward: no tokenizer.json in \(bare)")
        assertLuaError("lopper.model(bare):encode('hello')", contains: "encode: no tokenizer.json")
        XCTAssertEqual(try lua.run("return #lopper.model(bare):forward({{1, 2}})[1].logits:shape()").first?.number, 2)
        assertLuaError("lopper.model(bert):perplexity('hello')", contains: "perplexity: \(bert) is an encoder (bert)")
        assertLuaError("lopper.model(llama):perplexity({{5}})", contains: "perplexity: no sequence has two or more tokens")
        assertLuaError("lopper.model(llama):forward({{1, 500}})", contains: "forward: token id 500 (entry 2 of sequence 1) is outside the vocabulary 0..127")
        assertLuaError("lopper.model(llama):forward({{1, 2.5}})", contains: "forward: entry 2 of sequence 1 is not an integer")
        assertLuaError("lopper.model(llama):forward(42)", contains: "bad argument #1 to 'forward'")
        assertLuaError("lopper.model(llama):forward({true})", contains: "forward: entry 1 of the input is a boolean value")
        assertLuaError("lopper.model(llama, 5)", contains: "bad argument #2 to 'model' (Checkpoint, table of tensors or function expected, got number)")
        assertLuaError("lopper.model(llama, {['\(name)'] = 3})", contains: "model: weights[\"\(name)\"] is a number value, expected a tensor")
        assertLuaError("lopper.model(llama, {['\(name)'] = lopper.zeros({2, 2})})", contains: "model: tensors that do not fit the config: \(name) is [2,2], expected [32,96]")
        assertLuaError("lopper.model(llama, {['model.layers.0.mlp.down_proj.weigth'] = lopper.zeros({32, 96})})",
                       contains: "did you mean \"\(name)\"")
        assertLuaError("lopper.model(llama, function(n) error('boom on ' .. n) end)", contains: "boom on ")
        assertLuaError("lopper.model(llama, function(n) return 'x' end)", contains: "the weights function returned a string value for")
        assertLuaError("lopper.model('/nonexistent/model')", contains: "model: ")
        assertLuaError("lopper.output_change(lopper.model(llama), lopper.model(bert), {{1, 2}})", contains: "output_change: the models do not match")
        assertLuaError("lopper.output_change(lopper.model(llama), 3, {{1, 2}})", contains: "bad argument #2 to 'output_change' (model expected, got number)")
        assertLuaError("lopper.model(llama).forward(3, 'x')", contains: "calling 'forward' on bad self")
    }

    func testNotInPluginSandbox() throws {
        let sandbox = try LuaState(sandbox: .init())
        defer { sandbox.close() }
        XCTAssertEqual(try sandbox.run("return lopper.model == nil and lopper.output_change == nil").first?.boolean, true)
    }
}

/// `lopper eval` as a user runs it (the built binary; skipped when it is missing).
final class EvalCommandTests: XCTestCase {
    func lopper(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try LopperBinary.run(arguments)
    }

    func testEvalPrintsPerplexityAndOutputChange() throws {
        let folders = try ModelFolders()
        defer { folders.remove() }
        let llama = try folders.model("llama"), bare = try folders.model("llama", tokenizer: false), bert = try folders.model("bert")
        let text = folders.root + "/text.txt", jsonl = folders.root + "/text.jsonl"
        try "the quick brown fox jumps over the lazy dog. a cat sat on a mat, and then it left.".write(toFile: text, atomically: true, encoding: .utf8)
        try "{\"text\": \"hi there\"}\n{\"text\": \"a much longer record that will not fit\"}\n".write(toFile: jsonl, atomically: true, encoding: .utf8)

        let run = try lopper(["eval", "--model", llama, "--data", text, "--seq-len", "16", "--max-sequences", "3"])
        XCTAssertEqual(run.status, 0, run.error)
        let tokenizer = try Tokenizer(path: llama)
        let calibration = try CalibrationText(path: text, tokenizer: tokenizer, sequenceLength: 16, maxSequences: 3)
        let expected = try perplexity(loadModel(folder: llama), on: calibration)
        XCTAssertTrue(run.output.contains("perplexity: \(String(format: "%.4f", expected)) (\(calibration.tokenCount - 3) tokens predicted)"), run.output)
        XCTAssertTrue(run.output.contains("3 sequences, \(calibration.tokenCount) tokens"), run.output)
        XCTAssertEqual(run.error, "")

        let same = try lopper(["eval", "--model", llama, "--reference", bare, "--data", jsonl, "--seq-len", "8"])
        XCTAssertEqual(same.status, 0, same.error)
        XCTAssertTrue(same.output.contains("output change vs \(bare): 0 (top-5 logit MSE)"), same.output)
        XCTAssertTrue(same.error.contains("lopper: warning: 1 record(s) longer than 8 tokens were truncated"), same.error)

        let encoder = try lopper(["eval", "--model", bert, "--reference", bert, "--data", text])
        XCTAssertEqual(encoder.status, 0, encoder.error)
        XCTAssertFalse(encoder.output.contains("perplexity"), encoder.output)
        XCTAssertTrue(encoder.output.contains("(mean |hidden difference|)"), encoder.output)

        let noTokenizer = try lopper(["eval", "--model", bare, "--data", text])
        XCTAssertEqual(noTokenizer.status, 1)
        XCTAssertEqual(noTokenizer.error, "lopper: error: no tokenizer.json in \(bare): pass --tokenizer PATH\n")
        let withTokenizer = try lopper(["eval", "--model", bare, "--data", text, "--tokenizer", llama + "/tokenizer.json"])
        XCTAssertEqual(withTokenizer.status, 0, withTokenizer.error)

        let encoderAlone = try lopper(["eval", "--model", bert, "--data", text])
        XCTAssertEqual(encoderAlone.status, 1)
        XCTAssertTrue(encoderAlone.error.hasPrefix("lopper: error: \(bert) is an encoder (bert)"), encoderAlone.error)
        let mismatch = try lopper(["eval", "--model", llama, "--reference", bert, "--data", text])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.error.contains("does not match"), mismatch.error)
        let help = try lopper(["eval", "--help"])
        XCTAssertTrue(help.output.contains("--reference"), help.output)
    }
}
