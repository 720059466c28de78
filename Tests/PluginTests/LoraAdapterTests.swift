import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperModels
import LopperPrune

/// LoRA adapters in and out, against files PEFT wrote (Scripts/make_lora_fixtures.py):
/// the product delta against PEFT's merge_and_unload, methods on that delta (DAREx-q),
/// factor pruning as PEFT's dare_linear, and a pruned adapter PEFT loaded and ran.
final class LoraAdapterTests: XCTestCase {
    static let fixtures = ModelPairFixture.fixtures.path
    static func base(_ model: String) -> String { fixtures + "/models/\(model)/model" }
    static func lora(_ path: String) -> String { fixtures + "/lora/" + path }

    var scratch = ""
    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "lopper-lora-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: scratch) }

    /// max |a - b| over max |b|.
    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let x = a.floats(), y = b.floats()
        let scale = y.map(abs).max() ?? 0
        return zip(x, y).map { abs($0 - $1) }.max()! / max(scale, .leastNormalMagnitude)
    }

    func prune(_ method: String, _ settings: [String], base: String, finetuned: String, output: DeltaOutput,
               out: String, seed: UInt64 = 1, exclude: [String] = []) throws -> RunReport {
        var configuration = PruneConfiguration(basePath: base, finetunedPath: finetuned, outputPath: scratch + "/" + out)
        configuration.settings = try settings.map(Setting.init(parsing:))
        configuration.output = output
        configuration.seed = seed
        configuration.selection = TensorSelection(exclude: exclude)
        return try Pruner(configuration, method: try PipelineFixture.plugin(method)).run()
    }

    // MARK: adapters in

    func testAdaptedTensorsMatchPEFTsMergeInF32AndTheRestIsTheBase() throws {
        for (model, base) in [("llama", Self.base("llama")), ("gpt2", Self.lora("gpt2/base"))] {
            let baseCheckpoint = try Checkpoint(path: base)
            let adapted = try Checkpoint.finetuned(path: Self.lora("\(model)/adapter"), base: baseCheckpoint)
            let merged = try SafetensorsFile(path: Self.lora("\(model)/merged.safetensors"))
            XCTAssertFalse(merged.names.isEmpty)
            for name in merged.names {
                let ours = try adapted.tensor(name), peft = try merged.tensor(name)
                XCTAssertEqual(ours.shape, peft.shape, name)
                XCTAssertLessThanOrEqual(relativeError(ours, peft), 2e-6, "\(model) \(name)")
                // The delta itself, not only W0 + delta: PEFT's merge minus the base.
                if let w0 = try? baseCheckpoint.tensor(name), !name.hasPrefix("lm_head") {
                    let expected = try delta(peft, w0), actual = try delta(ours, w0)
                    XCTAssertLessThanOrEqual(relativeError(actual, expected), 1e-4, "\(model) delta of \(name)")
                }
            }
            for name in baseCheckpoint.names where merged.info(name) == nil {
                XCTAssertEqual(try adapted.tensor(name).bytes(), try baseCheckpoint.tensor(name).bytes(), "\(model) \(name) is the base's")
            }
        }
    }

    func testBF16MergedOutputMatchesPEFTWithinOneRounding() throws {
        let base = Self.base("llama_bf16")
        try prune("dare", ["rate=0"], base: base, finetuned: Self.lora("llama_bf16/adapter"), output: .merged, out: "merged")
        let ours = try Checkpoint(path: scratch + "/merged"), peft = try SafetensorsFile(path: Self.lora("llama_bf16/merged.safetensors"))
        let original = try Checkpoint(path: base)
        // One BF16 step (8 significant bits) at magnitude `x`.
        func step(_ x: Float) -> Float { x == 0 ? 0 : Float(pow(2.0, Double(x.exponent - 7))) }
        for name in peft.names {
            let a = try ours.tensor(name), b = try peft.tensor(name)
            let w0 = name.hasPrefix("lm_head") ? b.floats() : try original.tensor(name).floats()
            XCTAssertEqual(a.dtype, .bf16, name)
            for ((x, y), w) in zip(zip(a.floats(), b.floats()), w0) {
                // Lopper rounds W0 + D once; PEFT rounds each sum once, and embeddings' D first
                // too (Embedding.merge adds the delta cast to BF16): half a step each.
                XCTAssertLessThanOrEqual(abs(x - y), step(max(abs(x), abs(y))) + step(abs(y - w)) / 2, "\(name): \(x) vs PEFT \(y)")
            }
        }
        for name in original.names where peft.info(name) == nil {
            XCTAssertEqual(try ours.tensor(name).bytes(), try original.tensor(name).bytes(), "\(name) is the base's")
        }
    }

    func testOnlyAdaptedLinearWeightsArePrunedAndDARExQSeesTheFullDelta() throws {
        let base = Self.base("llama"), adapter = Self.lora("llama/adapter")
        let q = 0.25, rate = 0.9
        let report = try prune("darex_q", ["rate=0.9", "mode=fixed", "q=0.25"], base: base, finetuned: adapter, output: .delta, out: "fixed")
        let pruned = Set(report.tensors.filter { $0.action == "pruned" }.map(\.name))
        XCTAssertEqual(pruned, Set((0..<2).flatMap { ["model.layers.\($0).self_attn.q_proj.weight", "model.layers.\($0).self_attn.v_proj.weight",
                                                         "model.layers.\($0).mlp.down_proj.weight"] }))
        XCTAssertEqual(report.tensors.first { $0.name == "model.layers.0.self_attn.k_proj.weight" }?.reason, "not changed by the adapter")
        let peft = try SafetensorsFile(path: Self.lora("llama/merged.safetensors")), w0 = try Checkpoint(path: base)
        let out = try Checkpoint(path: scratch + "/fixed")
        var kept = 0.0, total = 0.0
        for name in pruned {
            let full = try delta(try peft.tensor(name), try w0.tensor(name)).floats(), after = try out.tensor(name).floats()
            for (d, value) in zip(full, after) where value != 0 {
                XCTAssertEqual(Double(value), Double(d) / q, accuracy: 1e-4 * abs(Double(d) / q) + 1e-6, name)
                kept += 1
            }
            total += Double(full.count)
        }
        XCTAssertEqual(kept, total * (1 - rate), accuracy: 6 * (total * rate * (1 - rate)).squareRoot())
        // The closed-form q is the one of PEFT's delta.
        let closed = try prune("darex_q", ["rate=0.9", "mode=closed_form"], base: base, finetuned: adapter, output: .delta, out: "closed")
        for line in closed.tensors where line.action == "pruned" {
            let full = try delta(try peft.tensor(line.name), try w0.tensor(line.name))
            let moments = try deltaRowMoments(base: try Tensor(zeros: full.shape), finetuned: full)
            let expected = DARExQ.mseOptimal(p: rate, rowSums: moments.sums, rowSquares: moments.squares)
            XCTAssertEqual(try XCTUnwrap(line.figures["q"]), expected, accuracy: 1e-4 * expected, line.name)
        }
        // Untouched tensors: a zero delta, and the base's bytes in a merged output.
        XCTAssertTrue(try out.tensor("model.layers.0.self_attn.k_proj.weight").floats().allSatisfy { $0 == 0 })
    }

    // MARK: adapters out

    func testFactorPruningIsPEFTsDareLinearOnEachFactor() throws {
        let adapter = Self.lora("llama/adapter"), rate = 0.5
        let report = try prune("dare", ["rate=0.5"], base: Self.base("llama"), finetuned: adapter, output: .adapter, out: "pruned", seed: 7)
        let original = try Checkpoint(path: adapter), out = try Checkpoint(path: scratch + "/pruned")
        XCTAssertEqual(out.names, original.names)
        XCTAssertEqual(try readFile(scratch + "/pruned/adapter_config.json"), try readFile(adapter + "/adapter_config.json"))
        XCTAssertEqual(out.shards.first?.metadata["format"], "pt")
        var kept = 0.0, total = 0.0
        for line in report.tensors {
            let before = try original.tensor(line.name).floats(), after = try out.tensor(line.name).floats()
            if line.name.contains(".lora_A.") || line.name.contains(".lora_B.") {
                XCTAssertEqual(line.action, "pruned", line.name)
                for (x, y) in zip(before, after) where y != 0 { XCTAssertEqual(y, x / Float(1 - rate), accuracy: 1e-6, line.name) }
                kept += Double(after.filter { $0 != 0 }.count)
                total += Double(after.count)
            } else {
                // lm_head (modules_to_save), and the embedding's factors and saved base layer (embeddings are kept).
                XCTAssertEqual(line.action, "kept", line.name)
                XCTAssertEqual(after, before, line.name)
            }
        }
        XCTAssertEqual(kept, total * (1 - rate), accuracy: 6 * (total * rate * (1 - rate)).squareRoot())
        // A and B of one module have their own masks.
        let a = try out.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").floats().map { $0 != 0 }
        let b = try out.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").floats().map { $0 != 0 }
        XCTAssertNotEqual(a, b)
        // The committed adapter that PEFT loaded (make_lora_fixtures.py pruned) is this one.
        let committed = try Checkpoint(path: Self.lora("llama/pruned"))
        for name in committed.names { XCTAssertEqual(try out.tensor(name).bytes(), try committed.tensor(name).bytes(), name) }
    }

    func testPrunedAdapterRunsInLopperAsPEFTRanIt() throws {
        try prune("dare", ["rate=0"], base: Self.base("llama"), finetuned: Self.lora("llama/pruned"), output: .merged, out: "merged")
        let model = try loadModel(folder: scratch + "/merged")
        let inputs = try ModelTestsInputs.llama()
        let output = try model.forward(inputs)
        let expected = try SafetensorsFile(path: Self.lora("llama/pruned_logits.safetensors"))
        for index in inputs.indices {
            XCTAssertLessThanOrEqual(relativeError(try XCTUnwrap(output.logits?[index]), try expected.tensor("logits.\(index)")), 1e-4, "logits.\(index)")
        }
    }
}

/// The token sequences of the llama model fixture (models/llama/inputs.json).
enum ModelTestsInputs {
    static func llama() throws -> [[Int]] {
        let json = try JSON.parse(String(decoding: try readFile(LoraAdapterTests.fixtures + "/models/llama/inputs.json"), as: UTF8.self))
        guard case .array(let sequences)? = json["inputs"] else { throw PruneError("inputs.json: no inputs") }
        return sequences.map { sequence in
            guard case .array(let ids) = sequence else { return [] }
            return ids.compactMap { if case .number(let value, _) = $0 { return Int(value) } else { return nil } }
        }
    }
}

/// The optional interop check: a freshly pruned adapter (magnitude on the factors this
/// time) loaded by PEFT itself gives the logits Lopper's forward pass of the merged weights
/// gives. Skips without python3, torch, transformers and peft.
extension LoraAdapterTests {
    func testPEFTLoadsAFreshlyPrunedAdapterAndAgreesWithLopper() throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import torch, transformers, peft, safetensors"]
        probe.standardError = Pipe()
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("python3 with torch, transformers and peft is not installed") }
        try prune("magnitude", ["rate=0.7"], base: Self.base("llama"), finetuned: Self.lora("llama/adapter"), output: .adapter, out: "adapter")
        try prune("dare", ["rate=0"], base: Self.base("llama"), finetuned: scratch + "/adapter", output: .merged, out: "merged")
        let script = """
        import json, sys, torch
        from peft import PeftModel
        from safetensors.torch import save_file
        from transformers import LlamaForCausalLM
        base, adapter, inputs, out = sys.argv[1:]
        model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
        with torch.no_grad():
            logits = {f"logits.{i}": model(torch.tensor([ids])).logits[0].contiguous() for i, ids in enumerate(json.load(open(inputs))["inputs"])}
        save_file(logits, out)
        """
        let run = Process(), pipe = Pipe()
        run.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        run.arguments = ["python3", "-c", script, Self.base("llama"), scratch + "/adapter", Self.fixtures + "/models/llama/inputs.json", scratch + "/peft.safetensors"]
        run.standardOutput = pipe
        run.standardError = pipe
        try run.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 0, text)
        let expected = try SafetensorsFile(path: scratch + "/peft.safetensors")
        let inputs = try ModelTestsInputs.llama()
        let output = try loadModel(folder: scratch + "/merged").forward(inputs)
        for index in inputs.indices {
            XCTAssertLessThanOrEqual(relativeError(try XCTUnwrap(output.logits?[index]), try expected.tensor("logits.\(index)")), 1e-4, "logits.\(index)")
        }
    }
}
