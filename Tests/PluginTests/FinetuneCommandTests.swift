import Foundation
import LopperCore
import LopperIO
import LopperModels
import XCTest

/// `lopper finetune` end to end on the tiny BERT fixture (no head: one is added) and a
/// word-polarity task the test writes: the loss falls, the written folder runs in the
/// model runtime and classifies the task, AdamR-L2 stays nearer the base than AdamW; bad
/// input gives one line.
final class FinetuneCommandTests: XCTestCase {
    static let positive = ["good", "great", "fine", "nice", "happy", "superb"]
    static let negative = ["bad", "awful", "poor", "sad", "ugly", "dull"]
    static let filler = ["the", "movie", "was", "very", "a", "day", "food", "it", "and", "so", "really", "show"]

    var folder = ""
    var base: String { folder + "/base" }

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "training-finetune-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ModelPairFixture.fixtures.path + "/models/bert/model", toPath: base)
        try Self.tokenizerJSON.write(toFile: base + "/tokenizer.json", atomically: true, encoding: .utf8)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A WordPiece tokenizer over the task's words (ids below the fixture's vocabulary of 128).
    static var tokenizerJSON: String { tokenizerJSON(words: positive + negative + filler) }

    static func tokenizerJSON(words: [String]) -> String {
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        let vocab = (specials + words).enumerated().map { "\"\($1)\": \($0)" }.joined(separator: ", ")
        let added = specials.enumerated().map {
            "{\"id\": \($0), \"content\": \"\($1)\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
        }.joined(separator: ", ")
        return """
        {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [\(added)],
         "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
         "pre_tokenizer": {"type": "BertPreTokenizer"},
         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {\(vocab)}}}
        """
    }

    /// `count` records: filler words around one polarity word, labelled by it.
    static func examples(_ count: Int, seed: UInt64) throws -> [(text: String, label: String)] {
        let u = try uniform([count * 6], key: RandomKey(seed: seed, name: "finetune task")).floats()
        return (0..<count).map { i in
            let pick = { (words: [String], k: Int) in words[Int(u[i * 6 + k] * Float(words.count)) % words.count] }
            let isPositive = i % 2 == 0
            let word = pick(isPositive ? positive : negative, 0)
            var words = [pick(filler, 1), pick(filler, 2), pick(filler, 3)]
            words.insert(word, at: Int(u[i * 6 + 4] * 4) % 4)
            return (words.joined(separator: " "), isPositive ? "pos" : "neg")
        }
    }

    func writeData(_ name: String, _ records: [(text: String, label: String)]) throws -> String {
        let path = folder + "/" + name
        try records.map { "{\"text\": \"\($0.text)\", \"label\": \"\($0.label)\"}" }.joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func finetune(_ optimizer: String, lambda: String, data: String, out: String, extra: [String] = []) throws -> (status: Int32, output: String, error: String) {
        try LopperBinary.run(["finetune", "--base", base, "--data", data, "--task", "classify", "--optimizer", optimizer,
                              "--lr", "2e-3", "--lambda", lambda, "--epochs", "16", "--batch-size", "8", "--seed", "3",
                              "--out", out] + extra)
    }

    /// Mean losses from the stderr lines `epoch E/N: mean loss X`.
    func epochLosses(_ stderr: String) -> [Double] {
        stderr.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("epoch "), let range = line.range(of: "mean loss ") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 != "," })
        }
    }

    /// ||W - W0|| over the base's tensors, read back from the written files.
    func distance(_ out: String) throws -> Double {
        let tuned = try Checkpoint(path: out), original = try Checkpoint(path: base)
        var total = 0.0
        for name in original.names {
            for (a, b) in zip(try tuned.tensor(name).floats(), try original.tensor(name).floats()) { total += Double(a - b) * Double(a - b) }
        }
        return total.squareRoot()
    }

    func testTrainsAndAdamRStaysNearTheBase() throws {
        let train = try writeData("train.jsonl", try Self.examples(96, seed: 1))
        let held = try writeData("eval.jsonl", try Self.examples(40, seed: 2))
        var distances: [String: Double] = [:]
        for (optimizer, lambda) in [("adamw", "0.01"), ("adamr-l2", "0.1")] {
            let out = folder + "/" + optimizer
            let run = try finetune(optimizer, lambda: lambda, data: train, out: out, extra: ["--eval-data", held])
            XCTAssertEqual(run.status, 0, run.error)
            let losses = epochLosses(run.error)
            XCTAssertEqual(losses.count, 16, run.error)
            XCTAssertLessThan(losses.last!, losses.first! * 0.5, "\(optimizer): the loss falls: \(losses)")
            // the folder transformers would load: config with labels and class, tokenizer, the base's dtype
            let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
            XCTAssertTrue(config.contains("\"BertForSequenceClassification\""), config)
            XCTAssertTrue(config.contains("\"id2label\": {\"0\": \"neg\", \"1\": \"pos\"}") || config.contains("\"0\":\"neg\""), config)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tokenizer.json"))
            let written = try Checkpoint(path: out)
            XCTAssertEqual(written.info("classifier.weight")?.shape, [2, 32])
            XCTAssertEqual(written.info("embeddings.word_embeddings.weight")?.dtype, .f32)
            let metadata = try SafetensorsFile(path: out + "/model.safetensors").metadata
            XCTAssertTrue(metadata["lopper.finetune"]?.contains("\"\(optimizer)\"") ?? false, "\(metadata)")
            // the runtime's own forward pass on the written folder classifies held-out data
            let model = try loadModel(folder: out), tokenizer = try Tokenizer(path: out + "/tokenizer.json")
            let records = try Self.examples(40, seed: 2)
            let logits = try model.forward(records.map { tokenizer.encode($0.text) }).logits!
            let right = zip(logits, records).filter { l, r in
                let v = l.floats()
                return (v[1] > v[0] ? "pos" : "neg") == r.label
            }.count
            XCTAssertGreaterThanOrEqual(Double(right) / 40, 0.85, "\(optimizer): held-out accuracy")
            distances[optimizer] = try distance(out)
        }
        XCTAssertLessThan(distances["adamr-l2"]!, distances["adamw"]! * 0.8, "AdamR-L2 keeps the delta smaller: \(distances)")
    }

    func testSameSeedSameModel() throws {
        let train = try writeData("train.jsonl", try Self.examples(24, seed: 4))
        // and on any number of threads
        for (out, threads) in [("a", "1"), ("b", "3")] {
            XCTAssertEqual(try finetune("adamr-l1", lambda: "0.1", data: train, out: folder + "/" + out, extra: ["--threads", threads]).status, 0)
        }
        let a = try Checkpoint(path: folder + "/a"), b = try Checkpoint(path: folder + "/b")
        for name in a.names { XCTAssertEqual(try a.tensor(name).floats(), try b.tensor(name).floats(), name) }
    }

    /// --set lambda=0 (or a glob matching every tensor) makes AdamR plain Adam, which is AdamW
    /// without decay: the same bytes; a narrower glob and a layer schedule change the result
    /// (everywhere: the tensors train together); a bad --set is one line.
    func testLambdaSettings() throws {
        let train = try writeData("train.jsonl", try Self.examples(16, seed: 7))
        func run(_ name: String, _ optimizer: String, _ extra: [String]) throws -> Checkpoint {
            let r = try LopperBinary.run(["finetune", "--base", base, "--data", train, "--epochs", "2", "--batch-size", "4",
                                          "--optimizer", optimizer, "--lr", "1e-3", "--out", folder + "/" + name] + extra)
            XCTAssertEqual(r.status, 0, r.error)
            return try Checkpoint(path: folder + "/" + name)
        }
        let adamw = try run("adamw0", "adamw", ["--lambda", "0"]), adamr = try run("adamr0", "adamr-l2", ["--set", "lambda=0"])
        let plain = try run("plain", "adamr-l2", ["--lambda", "0.5"])
        let all = try run("all", "adamr-l2", ["--lambda", "0.5", "--set", "*:lambda=0"])
        let glob = try run("glob", "adamr-l2", ["--lambda", "0.5", "--set", "*encoder.layer.0.*:lambda=0"])
        let schedule = try run("schedule", "adamr-l2", ["--set", "lambda=[0.5,0]"])
        var differs = (glob: false, schedule: false)
        for name in adamw.names {
            let w = try adamw.tensor(name).floats(), p = try plain.tensor(name).floats()
            XCTAssertEqual(w, try adamr.tensor(name).floats(), name)
            XCTAssertEqual(w, try all.tensor(name).floats(), name)
            if try glob.tensor(name).floats() != p { differs.glob = true }
            if try schedule.tensor(name).floats() != p { differs.schedule = true }
        }
        XCTAssertTrue(differs.glob && differs.schedule)
        let bad = try LopperBinary.run(["finetune", "--base", base, "--data", train, "--set", "lambda=-1", "--out", folder + "/bad"])
        assertOneLineError(bad, "lambda", out: folder + "/bad")
    }

    /// --task lm on a tiny Llama (ModelPairFixture's base, the llama3 BPE tokenizer) and plain
    /// text: the loss and the held-out perplexity fall, AdamR-L2 stays nearer the base; labelled
    /// data and an encoder are one-line errors.
    func testLanguageModel() throws {
        let pair = try ModelPairFixture(deltaScale: 0)
        defer { pair.remove() }
        var distances: [String: Double] = [:]
        for (optimizer, lambda) in [("adamw", "0.01"), ("adamr-l2", "0.1")] {
            let out = folder + "/lm-" + optimizer
            let run = try LopperBinary.run(["finetune", "--base", pair.base, "--data", pair.text, "--eval-data", pair.text, "--task", "lm",
                                            "--seq-len", "16", "--optimizer", optimizer, "--lambda", lambda, "--lr", "3e-3",
                                            "--epochs", "6", "--batch-size", "4", "--out", out])
            XCTAssertEqual(run.status, 0, run.error)
            let losses = epochLosses(run.error)
            XCTAssertEqual(losses.count, 6, run.error)
            XCTAssertLessThan(losses.last!, losses.first! * 0.7, "\(optimizer): \(losses)")
            let perplexities = run.error.split(separator: "\n").compactMap { line in
                line.range(of: "eval perplexity ").flatMap { Double(line[$0.upperBound...]) }
            }
            XCTAssertEqual(perplexities.count, 6, run.error)
            XCTAssertLessThan(perplexities.last!, perplexities.first!, run.error)
            let tuned = try Checkpoint(path: out), original = try Checkpoint(path: pair.base)
            XCTAssertEqual(tuned.names.sorted(), original.names.sorted())
            var total = 0.0
            for name in original.names {
                for (a, b) in zip(try tuned.tensor(name).floats(), try original.tensor(name).floats()) { total += Double(a - b) * Double(a - b) }
            }
            distances[optimizer] = total.squareRoot()
            XCTAssertNotNil(try loadModel(folder: out).forward([[1, 2, 3]]).logits)
        }
        XCTAssertLessThan(distances["adamr-l2"]!, distances["adamw"]!, "\(distances)")
        let labelled = try writeData("labelled.jsonl", [("the text", "pos")])
        let out = folder + "/bad"
        assertOneLineError(try LopperBinary.run(["finetune", "--base", pair.base, "--data", labelled, "--task", "lm", "--out", out]),
                           "labelled.jsonl:1: a \"label\" in language-model data", out: out)
        assertOneLineError(try LopperBinary.run(["finetune", "--base", base, "--data", pair.text, "--task", "lm", "--out", out]),
                           "encoder; --task lm needs a Llama-family decoder", out: out)
    }

    /// Two epochs, then a resume to four, give the bytes of four straight (batch order and dropout
    /// are keyed by epoch and step); a resume with other settings, or without --resume, is refused.
    func testResumeContinuesTheSameRun() throws {
        let train = try writeData("train.jsonl", try Self.examples(24, seed: 8))
        func run(_ epochs: Int, _ checkpoint: String, _ out: String, _ extra: [String] = []) throws -> (status: Int32, output: String, error: String) {
            try LopperBinary.run(["finetune", "--base", base, "--data", train, "--epochs", String(epochs), "--batch-size", "8", "--lr", "1e-3",
                                  "--seed", "3", "--checkpoint", folder + "/" + checkpoint, "--out", folder + "/" + out] + extra)
        }
        XCTAssertEqual(try run(4, "ck-straight", "straight").status, 0)
        XCTAssertEqual(try run(2, "ck", "half").status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/ck/" + TrainingCheckpoint.fileName))
        let resumed = try run(4, "ck", "resumed", ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.error.contains("resuming from"), resumed.error)
        XCTAssertEqual(epochLosses(resumed.error).count, 2, resumed.error)
        let a = try Checkpoint(path: folder + "/straight"), b = try Checkpoint(path: folder + "/resumed"), half = try Checkpoint(path: folder + "/half")
        var halfDiffers = false
        for name in a.names {
            XCTAssertEqual(try a.tensor(name).floats(), try b.tensor(name).floats(), name)
            if try half.tensor(name).floats() != a.tensor(name).floats() { halfDiffers = true }
        }
        XCTAssertTrue(halfDiffers)
        assertOneLineError(try run(6, "ck", "other", ["--resume", "--seed", "4"]), "is the state of another run: its seed is 3, this run's is 4",
                           out: folder + "/other")
        assertOneLineError(try run(6, "ck", "other"), "--checkpoint", out: folder + "/other")
    }

    /// --pull: `return delta` is AdamR-L2 and `delta:sign()` AdamR-L1, to the byte; a rule that
    /// returns no tensor, or --pull with adamw, is one line.
    func testPullRule() throws {
        let train = try writeData("train.jsonl", try Self.examples(16, seed: 9))
        func run(_ name: String, _ optimizer: String, _ extra: [String] = []) throws -> (status: Int32, output: String, error: String) {
            try LopperBinary.run(["finetune", "--base", base, "--data", train, "--epochs", "2", "--batch-size", "4", "--lr", "1e-3",
                                  "--lambda", "0.5", "--optimizer", optimizer, "--out", folder + "/" + name] + extra)
        }
        func rule(_ name: String, _ body: String) throws -> String {
            let path = folder + "/" + name + ".lua"
            try body.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let l2 = try rule("l2", "return function(delta, ctx) return delta end")
        let l1 = try rule("l1", "return function(delta, ctx) assert(ctx.step >= 1 and ctx.name) return delta:sign() end")
        for (plain, custom, optimizer, file) in [("l2", "rule-l2", "adamr-l2", l2), ("l1", "rule-l1", "adamr-l2", l1)] {
            XCTAssertEqual(try run(plain, plain == "l2" ? "adamr-l2" : "adamr-l1").status, 0)
            let r = try run(custom, optimizer, ["--pull", file])
            XCTAssertEqual(r.status, 0, r.error)
            let a = try Checkpoint(path: folder + "/" + plain), b = try Checkpoint(path: folder + "/" + custom)
            for name in a.names { XCTAssertEqual(try a.tensor(name).floats(), try b.tensor(name).floats(), "\(custom) \(name)") }
        }
        let bad = try rule("bad", "return function(delta, ctx) return 'x' end")
        assertOneLineError(try run("bad", "adamr-l2", ["--pull", bad]), "pull rule \(bad), tensor", out: folder + "/bad")
        assertOneLineError(try run("adamw", "adamw", ["--pull", l2]), "--pull replaces AdamR's pull", out: folder + "/adamw")
    }

    /// A BF16 base gives a BF16 model, the new head included.
    func testBF16BaseStaysBF16() throws {
        let source = try SafetensorsFile(path: base + "/model.safetensors")
        let tensors = try source.names.map { ($0, try source.tensor($0).converted(to: .bf16)) }
        try FileManager.default.removeItem(atPath: base + "/model.safetensors")
        try saveSafetensors(tensors, to: base + "/model.safetensors")
        let train = try writeData("train.jsonl", try Self.examples(16, seed: 6))
        let run = try LopperBinary.run(["finetune", "--base", base, "--data", train, "--epochs", "1", "--out", folder + "/bf16"])
        XCTAssertEqual(run.status, 0, run.error)
        let written = try Checkpoint(path: folder + "/bf16")
        XCTAssertEqual(written.names.count, tensors.count + 2)
        for name in written.names { XCTAssertEqual(written.info(name)?.dtype, .bf16, name) }
    }

    func assertOneLineError(_ run: (status: Int32, output: String, error: String), _ needle: String, out: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.status, 1, run.error, file: file, line: line)
        let lines = run.error.split(separator: "\n").filter { !$0.hasPrefix("finetune:") && !$0.hasPrefix("epoch ") }
        XCTAssertEqual(lines.count, 1, run.error, file: file, line: line)
        XCTAssertTrue(run.error.contains("lopper: error:") && run.error.contains(needle), run.error, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output on failure", file: file, line: line)
    }

    func testBadInput() throws {
        let out = folder + "/out"
        let missing = try writeData("missing.jsonl", [("good day", "pos")])
        try (try String(contentsOfFile: missing, encoding: .utf8) + "\n{\"text\": \"bad day\"}").write(toFile: missing, atomically: true, encoding: .utf8)
        assertOneLineError(try finetune("adamw", lambda: "0", data: missing, out: out), "missing.jsonl:2: no \"label\"", out: out)
        let empty = try writeData("empty.jsonl", [])
        assertOneLineError(try finetune("adamw", lambda: "0", data: empty, out: out), "no examples", out: out)
        let single = try writeData("single.jsonl", [("good day", "pos"), ("nice day", "pos")])
        assertOneLineError(try finetune("adamw", lambda: "0", data: single, out: out), "at least 2 labels", out: out)
        // a base with a head of 3 labels (LABEL_0..2): an unknown name and an id past the head
        let headed = folder + "/headed"
        try FileManager.default.copyItem(atPath: ModelPairFixture.fixtures.path + "/models/bert_classifier/model", toPath: headed)
        try Self.tokenizerJSON.write(toFile: headed + "/tokenizer.json", atomically: true, encoding: .utf8)
        let unknown = try writeData("unknown.jsonl", [("good day", "LABEL_1"), ("bad day", "cat")])
        var run = try LopperBinary.run(["finetune", "--base", headed, "--data", unknown, "--out", out])
        assertOneLineError(run, "unknown.jsonl:2: label \"cat\" is not one of the model's 3 labels", out: out)
        let pastHead = try writeData("past.jsonl", [("good day", "LABEL_1")])
        try "{\"text\": \"bad\", \"label\": 7}".write(toFile: pastHead, atomically: true, encoding: .utf8)
        run = try LopperBinary.run(["finetune", "--base", headed, "--data", pastHead, "--out", out])
        assertOneLineError(run, "label \"7\" is not one of the model's 3 labels", out: out)
        // a decoder
        let decoder = ModelPairFixture.fixtures.path + "/models/llama/model"
        let data = try writeData("ok.jsonl", try Self.examples(8, seed: 5))
        run = try LopperBinary.run(["finetune", "--base", decoder, "--data", data, "--task", "classify", "--out", out])
        assertOneLineError(run, "decoder; --task classify needs a BERT-family encoder", out: out)
        // a NaN in the base makes the first loss NaN: stop, write nothing
        let poisoned = folder + "/poisoned"
        try FileManager.default.copyItem(atPath: base, toPath: poisoned)
        try poison(poisoned + "/model.safetensors", tensor: "embeddings.LayerNorm.weight")
        run = try LopperBinary.run(["finetune", "--base", poisoned, "--data", data, "--out", out])
        assertOneLineError(run, "the loss is nan at step 1", out: out)
    }

    /// Rewrites `file` with the first element of `tensor` set to NaN.
    func poison(_ file: String, tensor target: String) throws {
        let source = try SafetensorsFile(path: file)
        let tensors = try source.names.map { ($0, try source.tensor($0).clone()) }
        for (name, t) in tensors where name == target { t.storeScalar(.nan, at: 0) }
        try FileManager.default.removeItem(atPath: file)
        try saveSafetensors(tensors, to: file)
    }
}
