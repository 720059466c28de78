import Foundation
import LopperCore
import LopperIO
import LopperModels
import XCTest

/// The DAREx-L2 flow end to end, as the paper measures it: a base that has learnt something
/// (the tiny BERT fixture trained here on a 4-way "which word group" task, its head removed),
/// fine-tuned on polarity with AdamW and with AdamR-L2, then both pruned with DARE at p = 0.99
/// (the darex_l2 plugin, three mask seeds). AdamR-L2 keeps its accuracy; AdamW's falls to about
/// chance (measured: AdamW 1.0 -> 0.53, AdamR-L2 1.0 -> 1.0; with fine-tuning seeds 4 and 5
/// AdamW fell to 0.35 and 0.54, AdamR-L2 stayed at 1.0).
final class DarexL2FlowTests: XCTestCase {
    static let animals = ["cat", "dog", "cow", "owl", "fox", "bee"], colors = ["red", "blue", "green", "pink", "gray", "gold"]
    typealias Words = FinetuneCommandTests

    var folder = ""
    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "training-flow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// `count` records: three filler words and one word of group `i % groups.count`, labelled by its name.
    func records(_ count: Int, _ groups: [(String, [String])], seed: UInt64) throws -> [(text: String, label: String)] {
        let u = try uniform([count * 5], key: RandomKey(seed: seed, name: "flow task")).floats()
        func pick(_ words: [String], _ k: Int, _ i: Int) -> String { words[Int(u[i * 5 + k] * Float(words.count)) % words.count] }
        return (0..<count).map { i in
            let (label, words) = groups[i % groups.count]
            var text = [pick(Words.filler, 1, i), pick(Words.filler, 2, i), pick(Words.filler, 3, i)]
            text.insert(pick(words, 0, i), at: Int(u[i * 5 + 4] * 4) % 4)
            return (text.joined(separator: " "), label)
        }
    }

    func write(_ name: String, _ records: [(text: String, label: String)]) throws -> String {
        let path = folder + "/" + name
        try records.map { "{\"text\": \"\($0.text)\", \"label\": \"\($0.label)\"}" }.joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func lopper(_ arguments: [String]) throws {
        let run = try LopperBinary.run(arguments)
        XCTAssertEqual(run.status, 0, "lopper \(arguments.joined(separator: " ")): \(run.error)")
    }

    /// Held-out accuracy of a written classifier, by the runtime's forward pass.
    func accuracy(_ model: String, _ records: [(text: String, label: String)]) throws -> Double {
        let m = try loadModel(folder: model), tokenizer = try Tokenizer(path: model + "/tokenizer.json")
        let config = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        let positiveId = config.contains("\"0\": \"neg\"") || config.contains("\"0\":\"neg\"") ? 1 : 0
        let logits = try m.forward(records.map { tokenizer.encode($0.text) }).logits!
        let right = zip(logits, records).filter { l, r in
            let v = l.floats()
            return ((v[1] > v[0]) == (positiveId == 1) ? "pos" : "neg") == r.label
        }.count
        return Double(right) / Double(records.count)
    }

    func testAdamRL2SurvivesDAREWhereAdamWFails() throws {
        let fixture = ModelPairFixture.fixtures.path + "/models/bert/model"
        let start = folder + "/start"
        try FileManager.default.copyItem(atPath: fixture, toPath: start)
        try Words.tokenizerJSON(words: Words.positive + Words.negative + Words.filler + Self.animals + Self.colors)
            .write(toFile: start + "/tokenizer.json", atomically: true, encoding: .utf8)
        // the "pre-training": which of four word groups a sentence holds
        let groups = [("pos", Words.positive), ("neg", Words.negative), ("animal", Self.animals), ("color", Self.colors)]
        let pre = try write("pre.jsonl", try records(400, groups, seed: 1))
        try lopper(["finetune", "--base", start, "--data", pre, "--optimizer", "adamw", "--lambda", "0.01", "--lr", "2e-3",
                    "--epochs", "12", "--batch-size", "16", "--seed", "1", "--out", folder + "/pretrained"])
        // the base: that encoder without its head (the fixture's own config: no labels)
        let base = folder + "/base", pretrained = try Checkpoint(path: folder + "/pretrained")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try saveSafetensors(try pretrained.names.filter { !$0.hasPrefix("classifier.") }.map { ($0, try pretrained.tensor($0)) },
                            to: base + "/model.safetensors")
        for file in ["config.json"] { try FileManager.default.copyItem(atPath: fixture + "/" + file, toPath: base + "/" + file) }
        try FileManager.default.copyItem(atPath: start + "/tokenizer.json", toPath: base + "/tokenizer.json")
        // fine-tune on polarity, then DARE at p = 0.99
        let polarity = [("pos", Words.positive), ("neg", Words.negative)]
        let train = try write("train.jsonl", try records(96, polarity, seed: 2)), held = try records(60, polarity, seed: 3)
        var figures: [String: (tuned: Double, pruned: Double)] = [:]
        for (optimizer, lambda) in [("adamw", "0.01"), ("adamr-l2", "0.1")] {
            let tuned = folder + "/" + optimizer, pruned = tuned + "-dare"
            try lopper(["finetune", "--base", base, "--data", train, "--optimizer", optimizer, "--lambda", lambda, "--lr", "1e-2",
                        "--epochs", "10", "--batch-size", "8", "--seed", "3", "--out", tuned])
            var total = 0.0
            for seed in 1...3 {  // the mean over three masks
                try lopper(["prune", "--base", base, "--finetuned", tuned, "--method", "darex_l2", "--set", "rate=0.99", "--seed", String(seed),
                            "--out", pruned + "\(seed)", "--quiet"])
                total += try accuracy(pruned + "\(seed)", held)
            }
            figures[optimizer] = (try accuracy(tuned, held), total / 3)
        }
        let adamw = figures["adamw"]!, adamr = figures["adamr-l2"]!
        XCTAssertGreaterThanOrEqual(adamw.tuned, 0.9, "\(figures)")
        XCTAssertGreaterThanOrEqual(adamr.tuned, 0.9, "\(figures)")
        XCTAssertGreaterThanOrEqual(adamr.pruned, adamr.tuned - 0.05, "AdamR-L2 keeps its accuracy after DARE at p = 0.99: \(figures)")
        XCTAssertLessThan(adamw.pruned, adamw.tuned - 0.2, "AdamW loses clearly more: \(figures)")
        print("DAREx-L2 flow (accuracy fine-tuned -> after DARE p = 0.99): AdamW \(adamw.tuned) -> \(adamw.pruned), AdamR-L2 \(adamr.tuned) -> \(adamr.pruned)")
    }
}
