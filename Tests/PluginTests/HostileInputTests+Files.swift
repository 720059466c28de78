import Foundation
import XCTest

/// Hostile files and numbers: crashes become errors (class 5), hub caches and special
/// files (class 8), silently accepted files and settings (class 9).
final class HostileInputFileTests: XCTestCase {
    var root = ""
    override func setUpWithError() throws { root = try HostileHarness.folder("files") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    let layers = ["model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight"]

    /// Class 5: huge layer numbers, absurd config.json numbers and token ids.
    func testNumbersThatCrashedAreErrors() throws {
        var cases: [HostileCase] = []
        for (index, name) in ["model.layers.9223372036854775807.mlp.up_proj.weight",
                              "model.layers.99999999999999999999.mlp.up_proj.weight",
                              "model.layers.1000001.mlp.up_proj.weight"].enumerated() {
            let pair = try HostileHarness.pair(in: root + "/layer\(index)", names: [name])
            cases.append(HostileCase(name: "layer number \(index)", arguments: ["prune", "--base", pair.base, "--finetuned", pair.ft,
                                     "--method", "dare", "--out", root + "/layer\(index)/out"],
                                     culprit: name, inputs: [pair.base, pair.ft], watched: [root + "/layer\(index)"]))
        }
        let text = root + "/text.txt"
        try "some text to read".write(toFile: text, atomically: true, encoding: .utf8)
        let good: [String: String] = ["model_type": "\"llama\"", "hidden_size": "32", "intermediate_size": "64",
                                      "num_hidden_layers": "2", "num_attention_heads": "4", "vocab_size": "100"]
        let configs: [(String, String, String)] = [
            ("num_hidden_layers", "-3", "num_hidden_layers"), ("num_hidden_layers", "1e19", "num_hidden_layers"),
            ("hidden_size", "1e300", "hidden_size"), ("hidden_size", "1000000000", "hidden_size"),
            ("hidden_size", "10^9", "config.json"), ("intermediate_size", "-1", "intermediate_size"),
            ("rms_norm_eps", "-1", "rms_norm_eps"), ("rope_theta", "0", "rope_theta"), ("vocab_size", "0", "vocab_size"),
            ("num_key_value_heads", "1e30", "num_key_value_heads"), ("head_dim", "-8", "head_dim"),
            ("max_position_embeddings", "-1", "max_position_embeddings"),
        ]
        for (index, (key, value, culprit)) in configs.enumerated() {
            let model = root + "/config\(index)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            var fields = good
            fields[key] = value
            let json = "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
            try json.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
            cases.append(HostileCase(name: "config \(key)=\(value)", arguments: ["eval", "--model", model, "--data", text],
                                     culprit: culprit, inputs: [model, text], watched: [root]))
        }
        // Within every limit, but far too large for memory: refused before allocating.
        let huge = root + "/huge"
        try FileManager.default.createDirectory(atPath: huge, withIntermediateDirectories: true)
        try """
        {"model_type": "llama", "hidden_size": 1048576, "intermediate_size": 4194304, "num_hidden_layers": 1000,
         "num_attention_heads": 1024, "vocab_size": 16777216}
        """.write(toFile: huge + "/config.json", atomically: true, encoding: .utf8)
        cases.append(HostileCase(name: "config too large for memory", arguments: ["eval", "--model", huge, "--data", text],
                                 culprit: "in memory", inputs: [huge], watched: [root]))
        for (index, id) in ["-5", "1e300", "2.5"].enumerated() {
            let tokenizer = root + "/tokenizer\(index).json"
            try "{\"added_tokens\": [{\"id\": \(id), \"content\": \"<x>\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"
                .write(toFile: tokenizer, atomically: true, encoding: .utf8)
            cases.append(HostileCase(name: "token id \(id)", arguments: ["calibrate", "--model", root + "/config0", "--data", text,
                                     "--tokenizer", tokenizer, "--out", root + "/stats.safetensors"],
                                     culprit: "added_tokens", inputs: [tokenizer, text], watched: [root]))
        }
        for hostile in cases { try HostileHarness.expectFailure(hostile) }
    }

    /// Class 5: an allocation the system refuses is an error, not a crash.
    func testRefusedAllocationIsAnError() throws {
        let script = root + "/alloc.lua"
        try "local t = lopper.zeros({1000000, 1000000})\nprint(t)\n".write(toFile: script, atomically: true, encoding: .utf8)
        let run = try HostileHarness.run(["run", script])
        XCTAssertTrue(run.status > 0 && run.status < 128, "status \(run.status): \(run.error)")
        XCTAssertTrue(run.error.contains("memory"), run.error)
    }

    /// Class 8: a Hugging Face cache snapshot (files are symlinks into ../../blobs) works,
    /// and carried-over files are copied by content.
    func testHubCacheSnapshotOfSymlinks() throws {
        let pair = try HostileHarness.pair(in: root + "/plain", names: layers)
        var snapshots: [String] = []
        for (which, source) in [("base", pair.base), ("ft", pair.ft)] {
            let cache = root + "/hub/models--x--\(which)"
            let snapshot = cache + "/snapshots/abc123"
            try FileManager.default.createDirectory(atPath: cache + "/blobs", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
            for file in ["model.safetensors", "config.json", "tokenizer.json"] {
                let blob = cache + "/blobs/" + String(file.hashValue, radix: 16).replacingOccurrences(of: "-", with: "f")
                try FileManager.default.copyItem(atPath: source + "/" + file, toPath: blob)
                try FileManager.default.createSymbolicLink(atPath: snapshot + "/" + file,
                                                           withDestinationPath: "../../blobs/" + (blob as NSString).lastPathComponent)
            }
            snapshots.append(snapshot)
        }
        let out = root + "/out"
        let run = try HostileHarness.run(["prune", "--base", snapshots[0], "--finetuned", snapshots[1], "--method", "dare", "--out", out, "--quiet"])
        XCTAssertEqual(run.status, 0, run.error)
        for file in ["config.json", "tokenizer.json"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: out + "/" + file)
            XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeRegular, "\(file) must be a copy, not a link")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/" + file)),
                           try Data(contentsOf: URL(fileURLWithPath: pair.ft + "/" + file)), file)
        }
    }

    /// Class 8: FIFOs and other special files never hang a command.
    func testSpecialFilesNeverHang() throws {
        var cases: [HostileCase] = []
        for (index, file) in ["model.safetensors", "model.safetensors.index.json", "config.json"].enumerated() {
            let pair = try HostileHarness.pair(in: root + "/fifo\(index)", names: layers)
            if file != "model.safetensors.index.json" { try FileManager.default.removeItem(atPath: pair.ft + "/" + file) }
            XCTAssertEqual(mkfifo(pair.ft + "/" + file, 0o644), 0)
            let arguments = file == "config.json" ? ["eval", "--model", pair.ft, "--data", pair.ft + "/tokenizer.json"] : ["inspect", pair.ft]
            cases.append(HostileCase(name: "FIFO \(file)", arguments: arguments, culprit: "FIFO", inputs: [pair.base], watched: [root + "/fifo\(index)"]))
        }
        let text = root + "/fifo-text"
        XCTAssertEqual(mkfifo(text, 0o644), 0)
        let pair = try HostileHarness.pair(in: root + "/fifo-data", names: layers)
        try "{\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100}"
            .write(toFile: pair.ft + "/config.json", atomically: true, encoding: .utf8)
        cases.append(HostileCase(name: "FIFO --tokenizer", arguments: ["eval", "--model", pair.ft, "--data", pair.ft + "/config.json", "--tokenizer", text],
                                 culprit: "FIFO", inputs: [pair.ft], watched: [root + "/fifo-data"]))
        for hostile in cases { try HostileHarness.expectFailure(hostile) }

        // A FIFO beside the shards is skipped with a warning, not carried over, not waited on.
        let skip = try HostileHarness.pair(in: root + "/fifo-skip", names: layers)
        XCTAssertEqual(mkfifo(skip.ft + "/special_tokens_map.json", 0o644), 0)
        let inspect = try HostileHarness.run(["inspect", skip.ft])
        XCTAssertEqual(inspect.status, 0, inspect.error)
        XCTAssertTrue(inspect.output.contains("special_tokens_map.json (a FIFO)"), inspect.output)
        let prune = try HostileHarness.run(["prune", "--base", skip.base, "--finetuned", skip.ft, "--method", "dare", "--out", root + "/fifo-skip/out", "--quiet"])
        XCTAssertEqual(prune.status, 0, prune.error)
        XCTAssertTrue(prune.error.contains("skipped special_tokens_map.json"), prune.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/fifo-skip/out/special_tokens_map.json"))
    }

    /// Class 9: files and settings that were silently accepted.
    func testSilentAcceptanceIsAnError() throws {
        var cases: [HostileCase] = []
        let pair = try HostileHarness.pair(in: root + "/pair", names: layers)
        let watched = [root + "/pair"]
        for (index, byte) in [UInt8(0xFF), 0x7F].enumerated() {  // 0xFFFFFFFF is NaN, 0x7F7F7F7F finite; Inf below
            let delta = root + "/pair/delta\(index)"
            try FileManager.default.createDirectory(atPath: delta, withIntermediateDirectories: true)
            try HostileHarness.writeSafetensors(delta + "/model.safetensors", [(layers[0], [8, 16], 0), (layers[1], [8, 16], byte)])
            if byte == 0x7F {
                // +Inf: 0x7F800000 in element 0.
                var data = try Data(contentsOf: URL(fileURLWithPath: delta + "/model.safetensors"))
                let start = data.count - 8 * 16 * 4
                data.replaceSubrange(start..<start + 4, with: [0x00, 0x00, 0x80, 0x7F])
                try data.write(to: URL(fileURLWithPath: delta + "/model.safetensors"))
            }
            cases.append(HostileCase(name: byte == 0xFF ? "apply NaN delta" : "apply Inf delta",
                                     arguments: ["apply", "--base", pair.base, "--delta", delta, "--out", root + "/pair/applied"],
                                     culprit: layers[1], inputs: [pair.base, delta], watched: watched))
        }
        let twoIndexes = root + "/pair/two-indexes"
        try FileManager.default.copyItem(atPath: pair.ft, toPath: twoIndexes)
        for name in ["model.safetensors.index.json", "other.safetensors.index.json"] {
            try "{\"weight_map\": {\"\(layers[0])\": \"model.safetensors\", \"\(layers[1])\": \"model.safetensors\"}}"
                .write(toFile: twoIndexes + "/" + name, atomically: true, encoding: .utf8)
        }
        cases.append(HostileCase(name: "two index files", arguments: ["inspect", twoIndexes], culprit: "2 index files",
                                 inputs: [twoIndexes], watched: watched))
        let empty = root + "/pair/empty-map"
        try FileManager.default.copyItem(atPath: pair.ft, toPath: empty)
        try "{\"weight_map\": {}}".write(toFile: empty + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        cases.append(HostileCase(name: "empty weight_map", arguments: ["prune", "--base", pair.base, "--finetuned", empty,
                                 "--method", "dare", "--out", root + "/pair/out"], culprit: "weight_map is empty",
                                 inputs: [pair.base, empty], watched: watched))
        let noTensors = root + "/pair/no-tensors"
        try FileManager.default.createDirectory(atPath: noTensors, withIntermediateDirectories: true)
        try HostileHarness.writeSafetensors(noTensors + "/model.safetensors", [])
        cases.append(HostileCase(name: "model without tensors", arguments: ["prune", "--base", pair.base, "--finetuned", noTensors,
                                 "--method", "dare", "--out", root + "/pair/out"], culprit: "holds no tensors",
                                 inputs: [pair.base, noTensors], watched: watched))
        for setting in ["rate=[0.9,,0.99]", "rate=[0.9,]", "rate=[]", "rate=[,0.9]", "rate=[0.9;0.99]"] {
            cases.append(HostileCase(name: "--set \(setting)", arguments: ["prune", "--base", pair.base, "--finetuned", pair.ft,
                                     "--method", "dare", "--set", setting, "--out", root + "/pair/out"],
                                     culprit: String(setting.dropFirst(5)), inputs: [pair.base, pair.ft], watched: watched))
        }
        for glob in ["*.nomatch.*", "model.layers.7.*"] {
            cases.append(HostileCase(name: "--set glob \(glob)", arguments: ["prune", "--base", pair.base, "--finetuned", pair.ft,
                                     "--method", "dare", "--set", glob + ":rate=0.5", "--out", root + "/pair/out"],
                                     culprit: glob, inputs: [pair.base, pair.ft], watched: watched))
        }
        for hostile in cases { try HostileHarness.expectFailure(hostile) }
    }
}
