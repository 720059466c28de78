import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// The numpy reference reader (Scripts/sparse_reader.py) rebuilds Lopper's merged output
/// from a sparse delta bit for bit: seeded masks (per element and per row), gaps, bitmaps
/// and dense tensors. Optional: skipped when python3 with numpy is not installed.
final class SparseReaderInteropTests: XCTestCase {
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/sparse_reader.py").path
    }

    func python(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { throw XCTSkip("python3 is not available") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func testTheNumpyReaderRebuildsTheMergedOutput() throws {
        guard try python(["-c", "import numpy"]).0 == 0 else { throw XCTSkip("numpy is not installed") }
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let complement = fixture.folder + "/complement.lua"
        try """
        return { name = "complement", version = "1", api = 2, summary = "keeps what a mask of keep = rate drops",
          prune = function(delta, ctx) return delta - delta * ctx.rng:bernoulli(ctx.params.rate) end }
        """.write(toFile: complement, atomically: true, encoding: .utf8)
        let runs: [(String, PruneMethod, [String], SparseOptions, Set<SparseRecord.Encoding>)] = [
            ("dare", try PipelineFixture.plugin("dare"), ["rate=0.99"], SparseOptions(), [.philox]),
            ("structural", try PipelineFixture.plugin("structural"), ["rate=0.5"], SparseOptions(), [.philox]),
            ("magnitude", try PipelineFixture.plugin("magnitude"), ["rate=0.9"], SparseOptions(kept: .delta), [.indices]),
            ("complement", try Plugin(path: complement), ["rate=0.5"], SparseOptions(), [.bitmap]),
        ]
        for (label, method, settings, options, encodings) in runs {
            try SparseDeltaTests.prune(fixture, method, settings, out: label + "-merged", sparse: nil)
            try SparseDeltaTests.prune(fixture, method, settings, out: label, sparse: options)
            let records = try SparseDeltaTests.records(fixture.folder + "/" + label)
            XCTAssertEqual(Set(PipelineFixture.prunable.compactMap { records[$0]?.encoding }), encodings, label)
            let rebuilt = fixture.folder + "/" + label + ".safetensors"
            let (status, output) = try python([Self.script, fixture.folder + "/" + label, fixture.base, "--out", rebuilt])
            XCTAssertEqual(status, 0, "\(label): \(output)")
            let merged = try Checkpoint(path: fixture.folder + "/" + label + "-merged"), python = try Checkpoint(path: rebuilt)
            XCTAssertEqual(Set(python.names), Set(merged.names), label)
            for name in merged.names {
                XCTAssertTrue(try python.tensor(name).bytes() == merged.tensor(name).bytes(), "\(label): \(name)")
            }
        }
        // A base the delta was not made against is refused by the reader too.
        let (status, output) = try python([Self.script, fixture.folder + "/dare", fixture.finetuned, "--out", fixture.folder + "/x.safetensors"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("is not the base"), output)
    }
}
