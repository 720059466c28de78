import Foundation
import XCTest

/// Hostile output paths (class 6: inputs destroyed) and messages (class 10).
final class HostileInputPathTests: XCTestCase {
    var root = ""
    override func setUpWithError() throws { root = try HostileHarness.folder("paths") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    let layers = ["model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight"]

    /// Every output (main and side) that is an input, inside one or holding one is refused
    /// before any work, whatever --overwrite says; one overwrite rule for every output.
    func testOutputsNeverReplaceInputs() throws {
        let pair = try HostileHarness.pair(in: root, names: layers)
        let text = root + "/text.txt"
        try "calibration text".write(toFile: text, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/link-to-base", withDestinationPath: pair.base)
        try FileManager.default.createDirectory(atPath: root + "/full", withIntermediateDirectories: true)
        try "keep me".write(toFile: root + "/full/notes.txt", atomically: true, encoding: .utf8)
        try "old report".write(toFile: root + "/old.json", atomically: true, encoding: .utf8)
        let prune = ["prune", "--base", pair.base, "--finetuned", pair.ft, "--method", "dare"]
        let inputs = [pair.base, pair.ft, text, root + "/full", root + "/old.json"]
        let table: [(String, [String], String)] = [
            ("prune --out BASE --overwrite", prune + ["--out", pair.base, "--overwrite"], "is the input --base"),
            ("prune --out FT --overwrite", prune + ["--out", pair.ft, "--overwrite"], "is the input --finetuned"),
            ("prune --out inside base", prune + ["--out", pair.base + "/pruned"], "inside the input --base"),
            ("prune --out holding both", prune + ["--out", root, "--overwrite"], "holds the input"),
            ("prune --out symlink to base", prune + ["--out", root + "/link-to-base", "--overwrite"], "is the input --base"),
            ("prune --out base/../ft", prune + ["--out", pair.base + "/../ft", "--overwrite"], "is the input --finetuned"),
            ("prune --out via ./ and //", prune + ["--out", root + "/./base//", "--overwrite"], "is the input --base"),
            ("prune --report on a shard", prune + ["--out", root + "/o", "--report", pair.base + "/model.safetensors", "--overwrite"], "inside the input --base"),
            ("prune --report on ft config", prune + ["--out", root + "/o", "--report", pair.ft + "/config.json"], "inside the input --finetuned"),
            ("prune --report through link", prune + ["--out", root + "/o", "--report", root + "/link-to-base/config.json", "--overwrite"], "inside the input --base"),
            ("prune --report = --out", prune + ["--out", root + "/o", "--report", root + "/o"], "also the path of --out"),
            ("prune --report existing", prune + ["--out", root + "/o", "--report", root + "/old.json"], "exists; pass --overwrite"),
            ("prune --out existing folder", prune + ["--out", root + "/full"], "exists; pass --overwrite"),
            ("prune --report is a folder", prune + ["--out", root + "/o", "--report", root + "/full", "--overwrite"], "is a folder"),
            ("prune --report folder missing", prune + ["--out", root + "/o", "--report", root + "/nowhere/r.json"], "does not exist"),
            ("prune --calibration as --report", prune + ["--out", root + "/o", "--calibration", text, "--report", text, "--overwrite"], "is the input --calibration"),
            ("prune --out empty", prune + ["--out", ""], "--out: the path is empty"),
            ("prune --out under a file", prune + ["--out", text + "/sub"], "is not a folder"),
            ("apply --out BASE --overwrite", ["apply", "--base", pair.base, "--delta", pair.ft, "--out", pair.base, "--overwrite"], "is the input --base"),
            ("apply --out inside delta", ["apply", "--base", pair.base, "--delta", pair.ft, "--out", pair.ft + "/merged"], "inside the input --delta"),
            ("diff --svg ft/tokenizer.json", ["diff", "--base", pair.base, "--finetuned", pair.ft, "--svg", pair.ft + "/tokenizer.json"], "inside the input --finetuned"),
            ("diff --svg existing", ["diff", "--base", pair.base, "--finetuned", pair.ft, "--svg", root + "/old.json"], "exists; pass --overwrite"),
            ("calibrate --out model/config.json", ["calibrate", "--model", pair.ft, "--data", text, "--out", pair.ft + "/config.json"], "inside the input --model"),
            ("calibrate --out = --data", ["calibrate", "--model", pair.ft, "--data", text, "--out", text, "--overwrite"], "is the input --data"),
            ("search-q --report inside base", ["search-q", "--base", pair.base, "--finetuned", pair.ft, "--data", text, "--rate", "0.9",
                                             "--report", pair.base + "/q.json"], "inside the input --base"),
            ("docs --out existing", ["docs", "--out", root + "/old.json"], "exists; pass --overwrite"),
            ("docs --out a folder", ["docs", "--out", root + "/full", "--overwrite"], "is a folder"),
        ]
        for (name, arguments, culprit) in table {
            try HostileHarness.expectFailure(HostileCase(name: name, arguments: arguments, culprit: culprit, inputs: inputs, watched: [root]))
        }
        // `--out .` from inside the parent of the output: the current folder is never replaced.
        try HostileHarness.expectFailure(HostileCase(name: "prune --out .", arguments: prune + ["--out", ".", "--overwrite"],
                                                     culprit: "current folder", inputs: inputs, watched: [root],
                                                     directory: root + "/full"))
        try HostileHarness.expectFailure(HostileCase(name: "prune --out ..", arguments: prune + ["--out", "..", "--overwrite"],
                                                     culprit: "holds the input", inputs: inputs, watched: [root],
                                                     directory: root + "/full"))
    }

    /// Class 10: Foundation's raw errors never reach the user; terminal output is sanitised.
    func testMessagesArePlainAndSanitised() throws {
        let pair = try HostileHarness.pair(in: root, names: layers)
        let folderIndex = root + "/folder-index"
        try FileManager.default.copyItem(atPath: pair.ft, toPath: folderIndex)
        try FileManager.default.createDirectory(atPath: folderIndex + "/model.safetensors.index.json", withIntermediateDirectories: true)
        try HostileHarness.expectFailure(HostileCase(name: "index is a folder", arguments: ["inspect", folderIndex],
                                                     culprit: "model.safetensors.index.json: is a folder", inputs: [pair.ft], watched: [root]))
        let unreadable = root + "/unlistable"
        XCTAssertEqual(mkfifo(unreadable, 0o644), 0)
        try HostileHarness.expectFailure(HostileCase(name: "checkpoint is a FIFO", arguments: ["inspect", unreadable],
                                                     culprit: "unlistable: is a FIFO", inputs: [pair.ft], watched: [root]))

        // Control characters in tensor names: escaped in inspect and in the prune table.
        let hostileName = "model.layers.0.mlp.\u{1B}[2J\u{1B}[31mred\nfake line\u{202E}.weight"
        let evil = try HostileHarness.pair(in: root + "/evil", names: [hostileName])
        for arguments in [["inspect", evil.ft], ["prune", "--base", evil.base, "--finetuned", evil.ft, "--method", "dare", "--dry-run"]] {
            let run = try HostileHarness.run(arguments)
            XCTAssertEqual(run.status, 0, "\(arguments): \(run.error)")
            XCTAssertFalse(run.output.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{202E}" }, "\(arguments[0]) printed control characters")
            XCTAssertTrue(run.output.contains("\\u{1B}[2J"), run.output)
            XCTAssertFalse(run.output.contains("\nfake line"), "\(arguments[0]) let a name forge a line")
        }
    }
}
