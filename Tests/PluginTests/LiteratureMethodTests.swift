import Foundation
import XCTest
import LopperCore
import LopperIO

/// The literature methods that need the host: TIES's model-wide trim (`ties`,
/// granularity=model) and LiNeS's layer scaling (the host's `layer_scale` schedule after any
/// method), on a three-layer pair with hand-picked deltas, through the command line.
final class LiteratureMethodTests: XCTestCase {
    var root = ""
    var base: String { root + "/base" }
    var finetuned: String { root + "/finetuned" }
    static func weight(_ layer: Int) -> String { "model.layers.\(layer).mlp.up_proj.weight" }
    /// The deltas; the base is 1 everywhere, so fine-tuned values and deltas are exact in F32.
    static let deltas: [(String, [Float], [Int])] = [
        (weight(0), [1, -2, 2, 0], [2, 2]),
        (weight(1), [2, -0.5, 3], [1, 3]),
        (weight(2), [4, -1, 0.25, 8], [2, 2]),
    ]

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "lopper-literature-\(UUID().uuidString)"
        for (folder, isFinetuned) in [(base, false), (finetuned, true)] {
            let tensors = Self.deltas.map { name, delta, shape in
                (name, Tensor(delta.map { isFinetuned ? 1 + $0 : 1 }, shape: shape))
            }
            let writer = try ShardedWriter(folder: folder, shards: [tensors.map { .init(name: $0.0, dtype: .f32, shape: $0.1.shape) }])
            for (name, tensor) in tensors { try writer.write(tensor, name: name) }
            try writer.finish()
            try Data("{\"model_type\": \"llama\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        }
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    @discardableResult
    func lopper(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let run = try LopperBinary.run(arguments)
        XCTAssertEqual(run.status, status, "lopper \(arguments.joined(separator: " ")):\n\(run.output)\n\(run.error)", file: file, line: line)
        return run.error
    }

    @discardableResult
    func prune(_ method: String, _ settings: [String], output: String = "delta", out: String) throws -> [String: [Float]] {
        try lopper(["prune", "--base", base, "--finetuned", finetuned, "--method", method, "--output", output, "--quiet",
                    "--seed", "5", "--out", root + "/" + out] + settings.flatMap { ["--set", $0] })
        return output == "sparse" ? [:] : try deltas(out)
    }

    func deltas(_ out: String) throws -> [String: [Float]] {
        let checkpoint = try Checkpoint(path: root + "/" + out)
        return Dictionary(uniqueKeysWithValues: try checkpoint.names.map { ($0, try checkpoint.tensor($0).floats()) })
    }

    /// |delta| over the model: 8, 4, 3, then three 2s; keeping 4 of 11 (rate 7/11) keeps
    /// 8, 4, 3 and the first 2 in the run's order (layer 0's -2). Per tensor the same rate
    /// would keep 1 or 2 entries of every tensor instead.
    func testTiesKeepsTheTopKOfTheWholeModel() throws {
        let rate = "rate=\(7.0 / 11)"
        let kept = try prune("ties", [rate], out: "ties")
        XCTAssertEqual(kept[Self.weight(0)], [0, -2, 0, 0])
        XCTAssertEqual(kept[Self.weight(1)], [0, 0, 3])
        XCTAssertEqual(kept[Self.weight(2)], [4, 0, 0, 8])
        let perTensor = try prune("ties", [rate, "granularity=tensor"], out: "ties-per-tensor")
        XCTAssertEqual(perTensor[Self.weight(0)], [0, -2, 0, 0], "per tensor: round(4/11 * 4) = 1 entry")
        XCTAssertEqual(perTensor[Self.weight(1)], [0, 0, 3])
        XCTAssertEqual(perTensor[Self.weight(2)], [0, 0, 0, 8])

        // Merged and sparse outputs of it reproduce and rebuild byte for byte.
        try prune("ties", [rate], output: "merged", out: "ties-merged")
        try lopper(["reproduce", root + "/ties-merged", "--base", base, "--finetuned", finetuned])
        try prune("ties", [rate], output: "sparse", out: "ties-sparse")
        try lopper(["apply", "--base", base, "--delta", root + "/ties-sparse", "--out", root + "/ties-applied"])
        XCTAssertEqual(try deltas("ties-applied"), try deltas("ties-merged"))
        try lopper(["reproduce", root + "/ties-applied", "--base", base, "--finetuned", finetuned])

        // In parts (one shard each), every part finds the same model-wide threshold: layer 1's
        // part drops its tied 2 because layer 0's part keeps one, without writing layer 0.
        for part in 1...3 {
            try lopper(["prune", "--base", base, "--finetuned", finetuned, "--method", "ties", "--set", rate, "--output", "delta",
                        "--shard-size", "20", "--quiet", "--out", root + "/ties-parts", "--part", "\(part)/3"])
        }
        try lopper(["merge-parts", "--out", root + "/ties-parts"])
        XCTAssertEqual(try deltas("ties-parts"), kept)

        // One top-k needs one rate.
        let error = try lopper(["prune", "--base", base, "--finetuned", finetuned, "--method", "ties", "--set", "rate=[0.5,0.9]",
                                "--out", root + "/none"], expect: 1)
        XCTAssertTrue(error.contains("granularity=model keeps one top-k over the whole model"), error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/none"))
    }

    /// LiNeS with alpha = 0.5, beta = 1: layers 0, 1, 2 of 3 scaled by 0.5, 1, 1.5, after DARE
    /// (a prune hook) and after magnitude (a score hook): the same masks, scaled.
    func testLinesScalesWhatAnyMethodKeptByLayer() throws {
        let scales: [Float] = [0.5, 1, 1.5]
        for (method, settings) in [("dare", ["rate=0.5"]), ("magnitude", ["rate=0.5", "granularity=row"])] {
            let plain = try prune(method, settings, out: method)
            let lines = try prune(method, settings + ["layer_scale=[0.5,1.5]"], out: method + "-lines")
            let values = plain.values.flatMap { $0 }
            XCTAssertTrue(values.contains(0) && values.contains { $0 != 0 }, "\(method) pruned some entries and kept some")
            for layer in 0..<3 {
                let name = Self.weight(layer), expected = plain[name]!.map { $0 * scales[layer] }
                for (value, wanted) in zip(lines[name]!, expected) {
                    XCTAssertEqual(value, wanted, accuracy: 1e-6 * Swift.abs(wanted), "\(method) \(name)")
                }
            }
            let metadata = try Checkpoint(path: root + "/" + method + "-lines").shards[0].metadata
            XCTAssertTrue(metadata["lopper.parameters"]?.contains("\"layer_scale\":[0.5,1.5]") == true, metadata["lopper.parameters"] ?? "")
            try lopper(["reproduce", root + "/" + method + "-lines", "--base", base, "--finetuned", finetuned])
        }
        // Without pruning (rate 0) LiNeS alone: the whole delta, scaled.
        let alone = try prune("dare", ["rate=0", "layer_scale=[0.5,1.5]"], out: "lines-alone")
        for (layer, (name, delta, _)) in Self.deltas.enumerated() {
            XCTAssertEqual(alone[name], delta.map { $0 * scales[layer] }, name)
        }
    }
}
