import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import LopperCalibration
import LopperCore
import LopperIO
import LopperModels

/// `lopper prune --method darex_q --data FILE`: q searched and used in one command, on a small
/// encoder classifier pair (`EncoderPairFixture`); the choice in the report, metadata and plot;
/// the other ways of choosing q; bad inputs.
final class PruneSearchTests: XCTestCase {
    nonisolated(unsafe) static var shared: EncoderPairFixture?
    var pair: EncoderPairFixture { get throws {
        if let pair = Self.shared { return pair }
        let pair = try EncoderPairFixture()
        Self.shared = pair
        return pair
    } }
    override class func tearDown() { shared?.remove(); shared = nil }

    func lopper(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) { try LopperBinary.run(arguments) }
    func out(_ name: String) throws -> String { try pair.folder + "/" + name }

    func accuracy(_ model: String, on records: String) throws -> Double {
        let labeled = try LabeledText(path: records, tokenizer: try Tokenizer(path: pair.finetuned), sequenceLength: 64)
        return try LabeledMetric.accuracy.evaluate(try loadModel(folder: model), on: labeled,
                                                  labelNames: LabeledText.labelNames(configFolder: model), modelName: model)
    }

    func prune(_ method: String, _ extra: [String], out name: String) throws -> (status: Int32, output: String, error: String) {
        let pair = try pair
        return try lopper(["prune", "--base", pair.base, "--finetuned", pair.finetuned, "--method", method, "--out", try out(name)] + extra)
    }

    func report(_ name: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: try out(name)))) as? [String: Any])
    }

    func testOnePruneCommandSearchesQAndBeatsDAREOnHeldOutRecords() throws {
        let pair = try pair
        let searched = try prune("darex_q", ["--set", "rate=0.999", "--data", pair.validation, "--metric", "accuracy",
                                             "--report", try out("searched.json"), "--svg", try out("searched.svg")], out: "searched")
        XCTAssertEqual(searched.status, 0, searched.error)
        XCTAssertTrue(searched.output.contains("searching q for p = 0.999"), searched.output)
        let dare = try prune("dare", ["--set", "rate=0.999", "--quiet"], out: "dare")
        XCTAssertEqual(dare.status, 0, dare.error)
        let withSearch = try accuracy(try out("searched"), on: pair.heldOut), withDARE = try accuracy(try out("dare"), on: pair.heldOut)
        XCTAssertEqual(try accuracy(pair.finetuned, on: pair.heldOut), 1, "the fine-tuned model defines the labels")
        XCTAssertGreaterThan(withSearch, withDARE + 0.2, "held-out accuracy: searched q \(withSearch), DARE \(withDARE)")

        // The choice: curve, seeds, DARE's point, in the report and the output's metadata.
        let choice = try XCTUnwrap(try report("searched.json")["qChoice"] as? [String: Any])
        XCTAssertEqual(choice["how"] as? String, "search")
        XCTAssertEqual(choice["metric"] as? String, "accuracy")
        XCTAssertEqual(choice["seeds"] as? [Int], [0, 1, 2])
        let result = try XCTUnwrap(choice["result"] as? [String: Any])
        let curve = try XCTUnwrap(result["curve"] as? [[String: Any]]).compactMap { $0["q"] as? Double }
        XCTAssertGreaterThanOrEqual(curve.filter { $0 > 0.001 && $0 < 0.05 }.count, 5, "\(curve)")
        let q = try XCTUnwrap(choice["q"] as? Double)
        XCTAssertEqual((result["best"] as? [String: Any])?["q"] as? Double, q)
        XCTAssertEqual(((result["dare"] as? [String: Any])?["q"] as? Double) ?? 0, 0.001, accuracy: 1e-12)
        let metadata = try XCTUnwrap(try Checkpoint(path: try out("searched")).shards.first?.metadata)
        let recorded = try XCTUnwrap(JSONSerialization.jsonObject(with: Data((metadata["lopper.q_choice"] ?? "").utf8)) as? [String: Any])
        XCTAssertEqual(recorded["q"] as? Double, q)
        XCTAssertTrue(metadata["lopper.parameters"]?.contains("\"mode\":\"fixed\"") == true, "\(metadata)")
        let svg = try String(contentsOfFile: try out("searched.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("DARE (q = 1-p)") && svg.contains("<polyline"), svg)
        XCTAssertNoThrow(try XMLDocument(xmlString: svg))

        // The streamed output is the searched candidate for --seed 0: DARE's masks rescaled by 1/q.
        let name = "bert.encoder.layer.1.intermediate.dense.weight"
        let base = try Checkpoint(path: pair.base), finetuned = try Checkpoint(path: pair.finetuned)
        let expected = try fusedDare(base: try base.tensor(name), finetuned: try finetuned.tensor(name), keep: 0.001, scale: Float(1 / q),
                                     key: RandomKey(seed: 0, name: name), output: .merged, dtype: .f32).floats()
        let written = try Checkpoint(path: try out("searched")).tensor(name).floats()
        for (a, b) in zip(written, expected) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(b))) }
        // The recorded settings (mode=fixed, the q found) reproduce the output without the data.
        let reproduced = try lopper(["reproduce", try out("searched"), "--base", pair.base, "--finetuned", pair.finetuned])
        XCTAssertEqual(reproduced.status, 0, reproduced.error)
        XCTAssertTrue(reproduced.output.contains("byte-identical"), reproduced.output)
    }

    func testQGivenIsFixedAndNoDataIsTheClosedFormWithANote() throws {
        let fixed = try prune("darex_q", ["--set", "rate=0.99", "--set", "q=0.05", "--report", try out("fixed.json"), "--quiet"], out: "fixed")
        XCTAssertEqual(fixed.status, 0, fixed.error)
        let tensors = try XCTUnwrap(try report("fixed.json")["tensors"] as? [[String: Any]])
        let rescales = tensors.compactMap { $0["rescale"] as? Double }
        XCTAssertFalse(rescales.isEmpty)
        for rescale in rescales { XCTAssertEqual(rescale, 20, accuracy: 1e-5) }
        let closed = try prune("darex_q", ["--set", "rate=0.99", "--quiet"], out: "closed")
        XCTAssertEqual(closed.status, 0, closed.error)
        XCTAssertTrue(closed.error.contains("lopper: note: q chosen in closed form without data; --data FILE searches q"), closed.error)
        // Per-tensor modes still reach the plugin as written.
        let mixed = try prune("darex_q", ["--set", "rate=0.9", "--set", "*.query.*:mode=fixed", "--set", "*.query.*:q=0.5",
                                          "--report", try out("mixed.json"), "--quiet"], out: "mixed")
        XCTAssertEqual(mixed.status, 0, mixed.error)
        let lines = try XCTUnwrap(try report("mixed.json")["tensors"] as? [[String: Any]])
        let query = try XCTUnwrap(lines.first { ($0["name"] as? String) == "bert.encoder.layer.0.attention.self.query.weight" })
        XCTAssertEqual(try XCTUnwrap(query["rescale"] as? Double), 2, accuracy: 1e-5)
    }

    func testTheAnalyticalModeSearchesEtaAndGivesEachTensorItsQ() throws {
        let pair = try pair
        let run = try prune("darex_q", ["--set", "rate=0.999", "--set", "mode=analytical", "--set", "steps=6", "--data", pair.validation,
                                        "--metric", "accuracy", "--report", try out("analytical.json")], out: "analytical")
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertTrue(run.output.contains("searching eta"), run.output)
        let report = try report("analytical.json")
        let choice = try XCTUnwrap(report["qChoice"] as? [String: Any])
        XCTAssertEqual(choice["searched"] as? String, "eta")
        let eta = try XCTUnwrap(choice["eta"] as? Double)
        XCTAssertTrue(eta >= 0.01 && eta <= 10, "\(eta)")
        // Each tensor's own q, a bias the q of its weight.
        let rescale = Dictionary(uniqueKeysWithValues: try XCTUnwrap(report["tensors"] as? [[String: Any]]).compactMap { line in
            (line["rescale"] as? Double).map { (line["name"] as! String, $0) }
        })
        let weight = "bert.encoder.layer.0.attention.self.query.weight"
        XCTAssertEqual(rescale[weight.replacingOccurrences(of: "weight", with: "bias")], rescale[weight])
        XCTAssertGreaterThan(Set(rescale.values.map { ($0 * 1e6).rounded() }).count, 3, "per-tensor q's differ")
    }

    /// Nothing assumes a full fine-tune: a PEFT LoRA adapter (written by peft) is searched through
    /// its merged view, the config coming from the base.
    func testAPEFTAdapterIsSearchedThroughItsMergedView() throws {
        let fixtures = ModelPairFixture.fixtures.path
        let text = try out("bytes.jsonl")
        try "{\"text\": \"a!b#c$d%e&f\"}\n{\"text\": \"(a)b*c+d,e-f.g\"}\n".write(toFile: text, atomically: true, encoding: .utf8)
        let run = try lopper(["prune", "--base", fixtures + "/models/llama/model", "--finetuned", fixtures + "/lora/llama/adapter",
                              "--method", "darex_q", "--set", "rate=0.9", "--data", text, "--tokenizer", fixtures + "/tokenizers/gpt2_bpe/tokenizer.json",
                              "--out", try out("lora"), "--report", try out("lora.json"), "--quiet"])
        XCTAssertEqual(run.status, 0, run.error)
        let choice = try XCTUnwrap(try report("lora.json")["qChoice"] as? [String: Any])
        let result = try XCTUnwrap(choice["result"] as? [String: Any])
        let best = try XCTUnwrap((result["best"] as? [String: Any])?["value"] as? Double)
        let dare = try XCTUnwrap((result["dare"] as? [String: Any])?["value"] as? Double)
        XCTAssertLessThan(best, dare, "the output change of the searched q is below DARE's")
    }

    func testBadInputsGetOneLineErrors() throws {
        let pair = try pair
        // Copies of the pair without tokenizers.
        let bare = try out("bare"), bareBase = try out("bare-base")
        for (from, to) in [(pair.finetuned, bare), (pair.base, bareBase)] {
            try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
            for file in ["model.safetensors", "config.json"] { try FileManager.default.copyItem(atPath: from + "/" + file, toPath: to + "/" + file) }
        }
        let wrongLabels = try out("wrong.jsonl"), wrongIndex = try out("index.jsonl")
        try "{\"text\": \"cafe jumps\", \"label\": \"neutral\"}\n".write(toFile: wrongLabels, atomically: true, encoding: .utf8)
        try "{\"text\": \"cafe jumps\", \"label\": 7}\n".write(toFile: wrongIndex, atomically: true, encoding: .utf8)
        let script = try out("nan.lua")
        try """
        return lopper.search_q{ base = arg[1], finetuned = arg[2], rate = 0.99, seeds = {0}, metric = function(m) return 0/0 end }
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let prune = ["prune", "--method", "darex_q", "--set", "rate=0.999"]
        let cases: [(String, [String], String)] = [
            ("no tokenizer", prune + ["--base", bareBase, "--finetuned", bare, "--data", pair.unlabeled, "--out", try out("x1")],
             "no tokenizer.json in \(bare) or \(bareBase): pass --tokenizer PATH"),
            ("no head", prune + ["--base", pair.base, "--finetuned", pair.headless, "--data", pair.validation, "--metric", "accuracy", "--out", try out("x2")],
             "has no classification head"),
            ("label name", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--data", wrongLabels, "--metric", "mcc", "--out", try out("x3")],
             "wrong.jsonl:1: label \"neutral\" is not a label of"),
            ("label index", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--data", wrongIndex, "--metric", "accuracy", "--out", try out("x4")],
             "index.jsonl:1: label 7 is not a label of \(pair.finetuned)'s head (2 classes: 0-1)"),
            ("unlabeled", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--data", pair.unlabeled, "--metric", "accuracy", "--out", try out("x5")],
             "unlabeled.jsonl:1: a labeled metric needs \"label\""),
            ("perplexity of an encoder", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--data", pair.unlabeled, "--metric", "perplexity", "--out", try out("x6")],
             "perplexity needs a decoder"),
            ("search without data", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--set", "mode=search", "--out", try out("x7")],
             "mode=search needs --data FILE"),
            ("data for another method", ["prune", "--method", "dare", "--base", pair.base, "--finetuned", pair.finetuned, "--data", pair.unlabeled, "--out", try out("x8")],
             "--data is read by darex_q's q search; dare does not use it"),
            ("adapter output", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--data", pair.unlabeled, "--output", "adapter", "--out", try out("x10")],
             "--output adapter prunes the factors"),
            ("per-tensor eta in a search", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--set", "mode=analytical", "--set", "*.query.*:eta=2",
                                                    "--data", pair.unlabeled, "--out", try out("x11")],
             "mode=analytical takes eta for the whole model"),
            ("q below 1-p", prune + ["--base", pair.base, "--finetuned", pair.finetuned, "--set", "q_min=0.0001", "--data", pair.unlabeled, "--out", try out("x9")],
             "q_min = 0.0001 is below 1 - rate"),
        ]
        for (label, arguments, message) in cases {
            let result = try lopper(arguments)
            XCTAssertEqual(result.status, 1, "\(label): \(result.error)")
            XCTAssertTrue(result.error.hasPrefix("lopper: error: ") || result.error.contains("error"), "\(label): \(result.error)")
            XCTAssertTrue(result.error.contains(message), "\(label): \(result.error)")
            XCTAssertEqual(result.error.split(separator: "\n").filter { !$0.contains("warning") }.count, 1, "\(label): one line: \(result.error)")
        }
        // A Lua metric that returns NaN: the script's error names its line (then Lua's traceback, as for any script error).
        let nan = try lopper(["run", script, pair.base, pair.finetuned])
        XCTAssertEqual(nan.status, 1)
        let first = try XCTUnwrap(nan.error.split(separator: "\n").first)
        XCTAssertTrue(first.hasSuffix("nan.lua:1: search_q: metric returned NaN, expected a finite number"), nan.error)
        for index in 1...9 { XCTAssertFalse(FileManager.default.fileExists(atPath: try out("x\(index)")), "x\(index) left behind") }
    }

    /// `LOPPER_ENCODER_PAIR=DIR swift test --filter PruneSearchTests/testWriteTheEncoderPair` keeps a pair to try by hand.
    func testWriteTheEncoderPair() throws {
        guard let folder = ProcessInfo.processInfo.environment["LOPPER_ENCODER_PAIR"] else { throw XCTSkip("set LOPPER_ENCODER_PAIR=DIR") }
        _ = try EncoderPairFixture(folder: folder)
    }
}
