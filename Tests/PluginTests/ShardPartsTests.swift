import Foundation
import XCTest
import LopperIO

/// `lopper prune --part i/n` and `lopper merge-parts`: the parts of a run, joined, are
/// the single run's folder file for file and byte for byte (shards, index, config, the
/// metadata with its command line); bad part numbers and mismatched parts are one-line
/// errors that leave nothing behind.
final class ShardPartsTests: XCTestCase {
    /// A fixture pair resharded small enough (`--shard-size`) for several parts.
    static let shardSize = "40KB"

    func prune(_ fixture: PipelineFixture, _ extra: [String], out: String) -> [String] {
        ["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "dare", "--set", "rate=0.9",
         "--seed", "3", "--shard-size", Self.shardSize, "--quiet", "--out", fixture.folder + "/" + out] + extra
    }

    func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try LopperBinary.run(arguments)
        XCTAssertEqual(result.status, 0, "lopper \(arguments.joined(separator: " ")):\n\(result.error)", file: file, line: line)
    }

    func testPartsJoinedEqualASingleRun() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let manager = FileManager.default
        for (output, extra) in [("merged", [String]()), ("delta", ["--dtype", "f32"])] {
            // Every run names the same --out, as a single run would: the command line is in the metadata.
            let settings = ["--output", output] + extra, out = "out-\(output)"
            try run(prune(fixture, settings, out: out))
            try manager.moveItem(atPath: fixture.folder + "/" + out, toPath: fixture.folder + "/single-\(output)")
            let single = try fixture.files("single-\(output)")
            XCTAssertNotNil(single["model.safetensors.index.json"])
            let shards = single.keys.filter { $0.hasSuffix(".safetensors") }.count
            XCTAssertGreaterThanOrEqual(shards, 4, "the fixture splits into too few shards for the test")
            for parts in [1, 3, shards] {
                // Parts in reverse order: each depends on the plan only, never on another part.
                for part in (1...parts).reversed() { try run(prune(fixture, settings + ["--part", "\(part)/\(parts)"], out: out)) }
                try run(["merge-parts", "--out", fixture.folder + "/" + out])
                let joined = try fixture.files(out)
                XCTAssertEqual(joined.keys.sorted(), single.keys.sorted(), "\(output), \(parts) parts")
                for (name, data) in single { XCTAssertTrue(joined[name] == data, "\(output), \(parts) parts: \(name) differs") }
                // The parts named explicitly, in any order: the same folder again.
                let named = (1...parts).map { fixture.folder + "/\(out).part-\($0)-of-\(parts)" }
                try run(["merge-parts", "--out", fixture.folder + "/named", "--overwrite"] + named.reversed())
                XCTAssertEqual(try fixture.files("named"), single, "\(output), \(parts) parts named")
                for folder in named + [fixture.folder + "/" + out] { try manager.removeItem(atPath: folder) }
            }
        }
    }

    func testEachPartWritesItsShareOfTheShards() throws {
        XCTAssertEqual((1...3).map { ShardPart(number: $0, count: 3).shards(of: 7) }, [0..<2, 2..<4, 4..<7])
        XCTAssertEqual((1...4).map { ShardPart(number: $0, count: 4).shards(of: 4) }, [0..<1, 1..<2, 2..<3, 3..<4])
        XCTAssertEqual(ShardPart(number: 1, count: 1).shards(of: 5), 0..<5)
        XCTAssertEqual(ShardPart(number: 2, count: 8).folder(for: "out/pruned/"), "out/pruned.part-2-of-8")
        XCTAssertEqual(ShardPart.removing(from: ["lopper", "prune", "--part", "2/4", "--out", "o", "--part=1/4"]),
                       ["lopper", "prune", "--out", "o"])
    }

    func testBadPartNumbersAreOneLineErrors() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let inputs = [fixture.base, fixture.finetuned]
        let cases: [(String, [String], String)] = [
            ("part zero", ["--part", "0/2"], "--part 0/2"),
            ("part above the count", ["--part", "3/2"], "--part 3/2"),
            ("no count", ["--part", "2"], "--part 2"),
            ("zero parts", ["--part", "1/0"], "--part 1/0"),
            ("not a number", ["--part", "a/b"], "--part a/b"),
            ("more parts than shards", ["--part", "1/1000"], "--part 1/1000"),
            ("sparse output", ["--part", "1/2", "--output", "sparse"], "--output sparse"),
            ("a part over an input", ["--part", "1/2", "--out", fixture.finetuned], "--finetuned"),
        ]
        for (name, extra, culprit) in cases {
            try HostileHarness.expectFailure(HostileCase(name: name, arguments: prune(fixture, extra, out: "out"), culprit: culprit,
                                                         inputs: inputs, watched: [fixture.folder]))
        }
    }

    func testMismatchedPartsAreRefused() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        func part(_ part: String, out: String, _ extra: [String] = []) throws { try run(prune(fixture, ["--part", part] + extra, out: out)) }
        // `{part}` gives each part its own report while the command lines stay equal.
        let report = ["--report", fixture.folder + "/report-{part}.json"]
        try part("1/3", out: "a", report); try part("2/3", out: "a", report); try part("3/3", out: "a", report)
        for part in 1...3 { XCTAssertTrue(isRegularFile(fixture.folder + "/report-\(part)-of-3.json")) }
        try part("1/3", out: "seed", ["--seed", "4"])
        try part("1/2", out: "halves")
        try part("1/3", out: "plain")
        try part("1/3", out: "rate", ["--set", "rate=0.5"])
        let a = (1...3).map { fixture.folder + "/a.part-\($0)-of-3" }
        let out = fixture.folder + "/joined"
        let inputs = [fixture.base, fixture.finetuned] + a
        let cases: [(String, [String], String)] = [
            ("a missing part", [a[0], a[2]], "part 2 of 3 is missing"),
            ("none found", [], "none found beside"),
            ("another seed", [fixture.folder + "/seed.part-1-of-3", a[1], a[2]], "lopper.seed"),
            ("another command line", [fixture.folder + "/plain.part-1-of-3", a[1], a[2]], "lopper.command_line"),
            ("another rate", [fixture.folder + "/rate.part-1-of-3", a[1], a[2]], "lopper.parameters"),
            ("another count", [fixture.folder + "/halves.part-1-of-2", a[1], a[2]], "parts of different runs"),
            ("a part twice", [a[0], a[1], a[1], a[2]], "both part 2 of 3"),
            ("not a part", [fixture.finetuned, a[1], a[2]], "not a part folder"),
        ]
        for (name, parts, culprit) in cases {
            try HostileHarness.expectFailure(HostileCase(name: name, arguments: ["merge-parts", "--out", out] + parts, culprit: culprit,
                                                         inputs: inputs, watched: [fixture.folder]))
        }
        try HostileHarness.expectFailure(HostileCase(name: "out is a part", arguments: ["merge-parts", "--out", a[1]] + a,
                                                     culprit: "--out", inputs: inputs, watched: [fixture.folder]))
        try run(["merge-parts", "--out", out] + a)
        try HostileHarness.expectFailure(HostileCase(name: "out exists", arguments: ["merge-parts", "--out", out] + a,
                                                     culprit: "--overwrite", inputs: inputs + [out], watched: [fixture.folder]))
        // A shard that is not what its part wrote (cut short, as by a full disk outside Lopper).
        let shard = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: a[1]).first { $0.hasSuffix(".safetensors") })
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: a[1] + "/" + shard))
        try handle.truncate(atOffset: try handle.seekToEnd() - 4)
        try handle.close()
        try HostileHarness.expectFailure(HostileCase(name: "a shard cut short", arguments: ["merge-parts", "--out", out, "--overwrite"] + a,
                                                     culprit: shard, inputs: inputs + [out], watched: [fixture.folder]))
    }
}
