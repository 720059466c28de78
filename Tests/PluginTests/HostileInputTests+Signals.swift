import Foundation
import XCTest

/// Signals during writes (class 7), against the real binary on a pair large enough
/// (2 x 256 MB) to be mid-write when the signal lands: the command exits with status 1,
/// its hidden temporaries are gone, inputs and an existing output are untouched, and a
/// later run removes temporaries whose process died.
final class HostileInputSignalTests: XCTestCase {
    var root = ""
    override func setUpWithError() throws { root = try HostileHarness.folder("signals") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func bigPair() throws -> (base: String, ft: String) {
        try HostileHarness.pair(in: root, names: (0..<8).map { "model.layers.\($0).mlp.up_proj.weight" }, rows: 2048, cols: 4096)
    }

    /// Starts `arguments`, waits until a hidden temporary of the process holds data, sends
    /// `signals` and checks what is left.
    func interrupt(_ name: String, _ arguments: [String], signals: [Int32], inputs: [String]) throws {
        let before = HostileHarness.fingerprint(inputs), listed = HostileHarness.listing([root])
        let process = try HostileHarness.start(arguments)
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(120)
        var seen = false
        while !seen, process.isRunning, Date() < deadline {
            let hidden = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix(".") && $0.hasSuffix("-\(pid)") }
            seen = hidden.contains { entry in
                let path = root + "/" + entry
                let inside = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                return !inside.isEmpty || (inside.isEmpty && size > 0 && !entry.contains(".tmp-"))
            }
            if !seen { usleep(1000) }
        }
        XCTAssertTrue(seen, "[\(name)] never saw a temporary being written")
        for (index, signal) in signals.enumerated() {
            if index > 0 { usleep(2000) }
            kill(pid, signal)
        }
        let run = try HostileHarness.finish(process, timeout: 120)
        let label = "[\(name)] lopper \(arguments.joined(separator: " "))"
        XCTAssertTrue(run.status > 0 && run.status < 128, "\(label): exit status \(run.status): \(run.error)")
        XCTAssertTrue(run.error.contains("interrupted"), "\(label): \(run.error)")
        HostileHarness.expectUnchanged(HostileCase(name: name, arguments: arguments, culprit: "", inputs: inputs, watched: [root]),
                                       before: before, listed: listed, label)
    }

    func testSignalsDuringWritesLeaveNothingBehind() throws {
        let pair = try bigPair()
        let prune = ["prune", "--base", pair.base, "--finetuned", pair.ft, "--method", "dare", "--set", "rate=0.5", "--quiet"]
        let inputs = [pair.base, pair.ft]
        for (name, signal) in [("SIGTERM", SIGTERM), ("SIGHUP", SIGHUP), ("SIGINT", SIGINT), ("SIGQUIT", SIGQUIT)] {
            try interrupt("prune \(name)", prune + ["--out", root + "/out"], signals: [signal], inputs: inputs)
        }
        try interrupt("prune SIGINT twice", prune + ["--out", root + "/out"], signals: [SIGINT, SIGINT], inputs: inputs)
        try interrupt("prune SIGTERM then SIGINT", prune + ["--out", root + "/out"], signals: [SIGTERM, SIGINT], inputs: inputs)
        try interrupt("apply SIGINT", ["apply", "--base", pair.base, "--delta", pair.ft, "--out", root + "/applied"], signals: [SIGINT], inputs: inputs)
        try interrupt("apply SIGTERM", ["apply", "--base", pair.base, "--delta", pair.ft, "--out", root + "/applied"], signals: [SIGTERM], inputs: inputs)
        try interrupt("apply SIGINT twice", ["apply", "--base", pair.base, "--delta", pair.ft, "--out", root + "/applied"],
                      signals: [SIGINT, SIGINT], inputs: inputs)

        // An existing output being replaced with --overwrite survives an interrupted run intact.
        let old = root + "/old"
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: true)
        try "previous run".write(toFile: old + "/notes.txt", atomically: true, encoding: .utf8)
        try interrupt("prune --overwrite SIGTERM", prune + ["--out", old, "--overwrite"], signals: [SIGTERM], inputs: inputs + [old])

        let script = root + "/save.lua"
        try """
        local ft = lopper.load(arg[1])
        local names, i = ft:names(), 0
        lopper.save(function()
          i = i + 1
          if names[i] then return names[i], ft[names[i]] * 2 end
        end, arg[2])
        """.write(toFile: script, atomically: true, encoding: .utf8)
        try interrupt("lopper.save iterator SIGTERM", ["run", script, pair.ft, root + "/saved"], signals: [SIGTERM], inputs: inputs + [script])
        try interrupt("lopper.save iterator SIGINT twice", ["run", script, pair.ft, root + "/saved"], signals: [SIGINT, SIGINT],
                      inputs: inputs + [script])
    }

    /// Temporaries of a process that is gone are removed by the next write in that
    /// folder; those of a live process are kept.
    func testNextRunRemovesStaleTemporaries() throws {
        let pair = try HostileHarness.pair(in: root, names: ["model.layers.0.mlp.up_proj.weight"])
        var dead: pid_t = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = [root + "/.out.tmp-\(dead)", root + "/.other.spill-\(dead)"]
        try FileManager.default.createDirectory(atPath: stale[0], withIntermediateDirectories: true)
        try "partial".write(toFile: stale[0] + "/model.safetensors", atomically: true, encoding: .utf8)
        try "spill".write(toFile: stale[1], atomically: true, encoding: .utf8)
        let live = root + "/.busy.tmp-\(getpid())"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        let run = try HostileHarness.run(["prune", "--base", pair.base, "--finetuned", pair.ft, "--method", "dare", "--out", root + "/out", "--quiet"])
        XCTAssertEqual(run.status, 0, run.error)
        for path in stale { XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(path) of a dead process was kept") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "a live process's temporary was removed")
    }
}
