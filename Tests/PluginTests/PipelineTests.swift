import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// The pipeline with the reference plugins on a small checkpoint pair: statistics of
/// the random methods, exact selections, what is left untouched, reproducibility and
/// the output layout.
final class PipelineTests: XCTestCase {
    let weight = "model.layers.0.mlp.up_proj.weight"

    func testDareKeepsABinomialShareAndPreservesTheDeltaOnAverage() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let p = 0.9
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], output: .delta)
        let pruned = try fixture.tensor("out", weight).floats().map(Double.init)
        let original = try fixture.delta(weight)
        let n = Double(pruned.count)
        let kept = Double(pruned.filter { $0 != 0 }.count)
        // Binomial(n, 1-p): within 6 standard deviations.
        XCTAssertEqual(kept, n * (1 - p), accuracy: 6 * (n * p * (1 - p)).squareRoot())
        // Every kept entry is the original times 1/(1-p).
        for (after, before) in zip(pruned, original) where after != 0 {
            XCTAssertEqual(after, before / (1 - p), accuracy: 1e-6 * Swift.abs(before / (1 - p)) + 1e-7)
        }
        // E[sum D'] = sum D, Var[sum D'] = p/(1-p) sum D^2.
        let sd = (p / (1 - p) * original.reduce(0) { $0 + $1 * $1 }).squareRoot()
        XCTAssertEqual(pruned.reduce(0, +), original.reduce(0, +), accuracy: 6 * sd)
    }

    func testMagnitudeKeepsExactlyTheLargestEntries() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("magnitude"), ["rate=0.75"], output: .delta)
        let pruned = try fixture.tensor("out", weight).floats().map(Double.init)
        let original = try fixture.delta(weight)
        let keptIndices = pruned.indices.filter { pruned[$0] != 0 }
        XCTAssertEqual(keptIndices.count, Int((0.25 * Double(pruned.count)).rounded()))
        let keptSet = Set(keptIndices)
        let smallestKept = keptIndices.map { Swift.abs(original[$0]) }.min()!
        let largestDropped = original.indices.filter { !keptSet.contains($0) }.map { Swift.abs(original[$0]) }.max()!
        XCTAssertGreaterThanOrEqual(smallestKept, largestDropped - 1e-7)
        for index in keptIndices { XCTAssertEqual(pruned[index], original[index], accuracy: 1e-6) }

        // Per row: exactly round(0.25 * cols) in every row.
        try fixture.prune(try PipelineFixture.plugin("magnitude"), ["rate=0.75", "granularity=row"], out: "rows", output: .delta)
        let perRow = try fixture.tensor("rows", weight).floats()
        for row in 0..<PipelineFixture.rows {
            let slice = perRow[row * PipelineFixture.cols ..< (row + 1) * PipelineFixture.cols]
            XCTAssertEqual(slice.filter { $0 != 0 }.count, PipelineFixture.cols / 4, "row \(row)")
        }
    }

    func testStructuralDropsWholeRowsAndTheBiasFollows() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("structural"), ["rate=0.5", "axis=rows"], output: .delta)
        let pruned = try fixture.tensor("out", weight).floats()
        let bias = try fixture.tensor("out", "model.layers.0.mlp.up_proj.bias").floats()
        var keptRows = 0
        for row in 0..<PipelineFixture.rows {
            let slice = pruned[row * PipelineFixture.cols ..< (row + 1) * PipelineFixture.cols]
            let nonZero = slice.filter { $0 != 0 }.count
            XCTAssertTrue(nonZero == 0 || nonZero == PipelineFixture.cols, "row \(row) is partly dropped")
            XCTAssertEqual(nonZero == 0, bias[row] == 0, "bias entry \(row) does not follow its row")
            if nonZero > 0 { keptRows += 1 }
        }
        let n = Double(PipelineFixture.rows)
        XCTAssertEqual(Double(keptRows), n / 2, accuracy: 6 * (n * 0.25).squareRoot())

        try fixture.prune(try PipelineFixture.plugin("structural"), ["rate=0.5", "axis=cols"], out: "cols", output: .delta)
        let byColumns = try fixture.tensor("cols", weight).floats()
        for column in 0..<PipelineFixture.cols {
            let values = (0..<PipelineFixture.rows).map { byColumns[$0 * PipelineFixture.cols + column] }
            let nonZero = values.filter { $0 != 0 }.count
            XCTAssertTrue(nonZero == 0 || nonZero == PipelineFixture.rows, "column \(column) is partly dropped")
        }
    }

    func testRateZeroIsTheIdentityAndUntouchedTensorsAreByteIdentical() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        for method in ["dare", "darex_q", "magnitude", "structural"] {
            let report = try fixture.prune(try PipelineFixture.plugin(method), ["rate=0"], out: method)
            XCTAssertEqual(report.tensors.filter { $0.action == "pruned" }.count, PipelineFixture.prunable.count)
            for name in PipelineFixture.prunable + PipelineFixture.kept {
                XCTAssertEqual(try fixture.tensor(method, name).bytes(), try fixture.finetunedTensor(name).bytes(), "\(method): \(name)")
            }
        }
        let report = try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.99"], out: "dare99")
        for name in PipelineFixture.kept {
            XCTAssertEqual(try fixture.tensor("dare99", name).bytes(), try fixture.finetunedTensor(name).bytes(), name)
            XCTAssertEqual(report.tensors.first { $0.name == name }?.action, "kept")
        }
        XCTAssertEqual(report.tensors.first { $0.name == "model.embed_tokens.weight" }?.reason, "embedding")
    }

    func testSameSeedIsByteIdenticalOnAnyThreadCountAndSeedsDiffer() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], out: "one", seed: 42)
        Parallel.threads = 2
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], out: "two", seed: 42)
        Parallel.threads = 3
        try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.9"], out: "q3", seed: 42)
        Parallel.threads = 1
        try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.9"], out: "q1", seed: 42)
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], out: "other", seed: 43)
        XCTAssertEqual(try fixture.files("one"), try fixture.files("two"))
        XCTAssertEqual(try fixture.files("q1"), try fixture.files("q3"))
        XCTAssertNotEqual(try fixture.tensor("one", weight).bytes(), try fixture.tensor("other", weight).bytes())
        // DAREx-q draws DARE's mask: same kept positions, another scale.
        let dare = try fixture.tensor("one", weight).floats(), darex = try fixture.tensor("q1", weight).floats()
        let base = try fixture.baseTensor(weight).floats()
        XCTAssertEqual(zip(dare, base).map { $0 != $1 }, zip(darex, base).map { $0 != $1 })
    }

    func testOutputKeepsTheShardLayoutConfigAndRunMetadata() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("darex_q"), ["rate=0.99", "mode=fixed", "q=0.5"], seed: 7)
        let files = try fixture.files("out")
        XCTAssertEqual(Set(files.keys), Set(try fixture.files("finetuned").keys))
        let output = try Checkpoint(path: fixture.folder + "/out")
        let input = try Checkpoint(path: fixture.finetuned)
        XCTAssertEqual(output.names, input.names)
        XCTAssertEqual(output.shards.map { $0.names }, input.shards.map { $0.names })
        let metadata = output.shards[0].metadata
        XCTAssertEqual(metadata["lopper.method"], "darex_q")
        XCTAssertEqual(metadata["lopper.seed"], "7")
        XCTAssertEqual(metadata["format"], "pt")
        XCTAssertTrue(metadata["lopper.parameters"]?.contains("\"q\":0.5,") == true, metadata["lopper.parameters"] ?? "")
        for name in output.names { XCTAssertEqual(output.info(name)?.dtype, .bf16) }

        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.5"], out: "resharded", dtype: .f32, shardSize: 150_000)
        let resharded = try Checkpoint(path: fixture.folder + "/resharded")
        XCTAssertGreaterThan(resharded.shards.count, 2)
        for name in resharded.names where (try fixture.finetunedTensor(name)).dtype == .bf16 {
            XCTAssertEqual(resharded.info(name)?.dtype, .f32)
        }
    }

    func testPerLayerScheduleAndGlobOverrides() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let report = try fixture.prune(try PipelineFixture.plugin("magnitude"),
                                       ["rate=[0.5, 0.9]", "*.q_proj.weight:rate=0.25"], output: .delta)
        func kept(_ name: String) -> Double? { report.tensors.first { $0.name == name }?.keptFraction }
        XCTAssertEqual(try XCTUnwrap(kept("model.layers.0.mlp.up_proj.weight")), 0.5, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(kept("model.layers.1.mlp.up_proj.weight")), 0.1, accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(kept("model.layers.1.self_attn.q_proj.weight")), 0.75, accuracy: 1e-9)
    }

    func testDeltaOutputAddsBackToTheMergedModel() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.8"], out: "merged", seed: 5)
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.8"], out: "delta", seed: 5, output: .delta)
        let merged = try fixture.tensor("merged", weight).floats()
        let delta = try fixture.tensor("delta", weight).floats()
        let base = try fixture.baseTensor(weight).floats()
        for index in stride(from: 0, to: merged.count, by: 97) {
            XCTAssertEqual(merged[index], base[index] + delta[index], accuracy: 1e-6)
        }
        // Kept tensors in a delta output hold their full delta.
        let embedding = "model.embed_tokens.weight"
        let fullDelta = try fixture.delta(embedding)
        let written = try fixture.tensor("delta", embedding).floats()
        for (a, b) in zip(written, fullDelta) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }

    func testOutputLoadsInPythonSafetensors() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], seed: 3)
        let script = """
        import json, sys
        from safetensors import safe_open
        folder = sys.argv[1]
        index = json.load(open(folder + "/model.safetensors.index.json"))
        count = 0
        for shard in sorted(set(index["weight_map"].values())):
            with safe_open(folder + "/" + shard, framework="numpy") as f:
                meta = f.metadata()
                assert meta["lopper.method"] == "dare", meta
                for name in f.keys():
                    assert index["weight_map"][name] == shard
                    count += 1
        print(count)
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import safetensors, numpy"]
        try process.run(); process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("python3 with safetensors and numpy is not installed") }
        let check = Process()
        let pipe = Pipe()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // BF16 has no numpy dtype: read the headers and F32-safe metadata through safe_open only.
        check.arguments = ["python3", "-c", script, fixture.folder + "/out"]
        check.standardOutput = pipe
        check.standardError = pipe
        try check.run(); check.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(check.terminationStatus, 0, text)
        XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), String(try Checkpoint(path: fixture.finetuned).names.count))

        // Values: an F32 output read with safetensors.numpy equals what Lopper wrote.
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.9"], out: "f32", seed: 3, dtype: .f32)
        let name = "model.layers.1.mlp.up_proj.weight"
        let values = Process()
        let valuesPipe = Pipe()
        values.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        values.arguments = ["python3", "-c", """
        import glob, sys
        from safetensors.numpy import load_file
        tensors = {}
        for shard in glob.glob(sys.argv[1] + "/*.safetensors"):
            tensors.update(load_file(shard))
        t = tensors[sys.argv[2]]
        print(t.dtype, list(t.shape), repr(float(t.astype("float64").sum())), int((t != 0).sum()))
        """, fixture.folder + "/f32", name]
        values.standardOutput = valuesPipe
        values.standardError = valuesPipe
        try values.run(); values.waitUntilExit()
        let printed = String(decoding: valuesPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(values.terminationStatus, 0, printed)
        let tensor = try fixture.tensor("f32", name), floats = tensor.floats()
        let parts = printed.split(separator: " ").map(String.init)
        XCTAssertEqual(parts.first, "float32", printed)
        XCTAssertEqual(parts.count, 5, printed)
        XCTAssertEqual(try XCTUnwrap(Double(parts[3])), floats.reduce(0.0) { $0 + Double($1) }, accuracy: 1e-9, printed)
        XCTAssertEqual(Int(parts[4].trimmingCharacters(in: .whitespacesAndNewlines)), floats.filter { $0 != 0 }.count, printed)
    }
}

/// `lopper apply`: a pruned delta added back onto the base is the merged model.
final class ApplyTests: XCTestCase {
    func testDeltaAppliedToTheBaseIsTheMergedModel() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.8"], out: "merged", seed: 4)
        try fixture.prune(try PipelineFixture.plugin("dare"), ["rate=0.8"], out: "delta", seed: 4, output: .delta)
        let counts = try Applier(basePath: fixture.base, deltaPath: fixture.folder + "/delta", outputPath: fixture.folder + "/applied").run()
        XCTAssertEqual(counts.added, try Checkpoint(path: fixture.base).names.count)
        let merged = try Checkpoint(path: fixture.folder + "/merged"), applied = try Checkpoint(path: fixture.folder + "/applied")
        XCTAssertEqual(Set(applied.names), Set(merged.names))
        for name in PipelineFixture.prunable {
            XCTAssertEqual(try applied.tensor(name).bytes(), try merged.tensor(name).bytes(), name)
        }
        for name in PipelineFixture.kept {
            // base + (finetuned - base) in F32 is the fine-tuned value to within one rounding.
            for (a, b) in zip(try applied.tensor(name).floats(), try fixture.finetunedTensor(name).floats()) {
                XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(b)))
            }
        }
        XCTAssertEqual(applied.shards[0].metadata["lopper.method"], "dare")
        XCTAssertEqual(applied.shards[0].metadata["lopper.applied_to"], fixture.base)
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.folder + "/applied/config.json"))
    }
}
