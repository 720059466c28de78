import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Commands that stream over a checkpoint pair hold a few tensors, never the models: the
/// peak resident memory of the `lopper` process (its own rusage, from wait4) on a pair of
/// 24 layers, whose two models (78 MB) dwarf the largest tensor (2 MB as F32). Mapped input
/// pages count as resident until released, so a pass that reads every tensor without
/// letting go of its pages (a pre-pass, a diff) shows here as about the size of the pair.
final class StreamingMemoryTests: XCTestCase {
    private static let slack = 25 << 20

    func testPrePassesAndDiffStreamLikePrune() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-rss-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/make_demo_pair.lua").path
        let made = try LopperBinary.run(["run", script, root + "/pair", "7", "256", "688", "24", "2048", "100000000"])
        XCTAssertEqual(made.status, 0, made.error)
        let pair = ["--base", root + "/pair/base", "--finetuned", root + "/pair/finetuned"]
        func prune(_ method: [String]) -> [String] {
            ["prune"] + pair + ["--quiet", "--set", "rate=0.9", "--out", root + "/out-\(method.joined().hashValue)", "--method"] + method
        }
        let reference = try peakResident(prune(["dare"]))
        let sparse = root + "/sparse"
        XCTAssertEqual(try LopperBinary.run(["prune"] + pair + ["--quiet", "--method", "dare", "--set", "rate=0.99",
                                             "--output", "sparse", "--out", sparse]).status, 0)
        let commands = [("darex_q analytical", prune(["darex_q", "--set", "mode=analytical"])), ("magnitude", prune(["magnitude"])),
                        ("structural", prune(["structural"])), ("ties (granularity=model)", prune(["ties"])), ("diff", ["diff"] + pair),
                        ("apply (sparse)", ["apply", "--base", root + "/pair/base", "--delta", sparse, "--out", root + "/applied"])]
        for (label, command) in commands {
            let peak = try peakResident(command)
            XCTAssertLessThan(peak, reference + Self.slack, "\(label): peak \(peak >> 20) MiB, prune dare \(reference >> 20) MiB")
        }
    }

    /// Runs `lopper arguments` (output discarded) and returns its peak resident bytes.
    private func peakResident(_ arguments: [String]) throws -> Int {
        guard FileManager.default.isExecutableFile(atPath: LopperBinary.path) else {
            throw XCTSkip("\(LopperBinary.path) is not built (Scripts/test builds it first)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([LopperBinary.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, LopperBinary.path, &actions, nil, argv, environ), 0)
        var status: Int32 = 0, usage = rusage()
        XCTAssertEqual(wait4(pid, &status, 0, &usage), pid)
        XCTAssertEqual(status, 0, "lopper \(arguments.joined(separator: " ")) failed")
        return usage.ru_maxrss * 1024   // kilobytes on Linux
    }
}
