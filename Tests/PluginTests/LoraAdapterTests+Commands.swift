import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua

/// Broken adapters through the binary (one line naming the file and tensor, no output),
/// and the other ways in: `lopper diff`, `lopper.load` and `lopper.delta`.
extension LoraAdapterTests {
    /// A copy of the llama fixture adapter with `edit` applied to its config (as JSON text).
    func brokenAdapter(_ name: String, config edit: (String) -> String) throws -> String {
        let folder = scratch + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in [LoraAdapter.configName, LoraAdapter.weightsName] {
            try FileManager.default.copyItem(atPath: Self.lora("llama/adapter/" + file), toPath: folder + "/" + file)
        }
        let config = folder + "/" + LoraAdapter.configName
        try edit(try String(contentsOfFile: config, encoding: .utf8)).write(toFile: config, atomically: true, encoding: .utf8)
        return folder
    }

    func testBrokenAdaptersAreOneLineErrorsWithNoOutput() throws {
        let base = Self.base("llama")
        let noTargets = try brokenAdapter("no-targets") {
            $0.replacingOccurrences(of: "\"q_proj\"", with: "\"query\"").replacingOccurrences(of: "\"v_proj\"", with: "\"value\"")
                .replacingOccurrences(of: "\"down_proj\"", with: "\"dense\"").replacingOccurrences(of: "\"embed_tokens\"", with: "\"wte\"")
        }
        let wrongRank = try brokenAdapter("wrong-rank") { $0.replacingOccurrences(of: "\"r\": 4", with: "\"r\": 8") }
        let noConfig = try brokenAdapter("no-config") { $0 }
        try FileManager.default.removeItem(atPath: noConfig + "/" + LoraAdapter.configName)
        let cases: [(String, String, String, String)] = [
            ("target_modules match nothing", noTargets, base, "no-targets/adapter_config.json: target_modules [\""),
            ("rank disagrees with the tensors", wrongRank, base, "wrong-rank/adapter_model.safetensors: tensor \"base_model.model.model.embed_tokens.lora_embedding_A\": shape [4,128] has rank 4, but adapter_config.json gives module \"model.embed_tokens\" rank 8"),
            ("factors do not fit the base", Self.lora("llama/adapter"), Self.base("qwen2"), "adapter_model.safetensors: tensors \"base_model.model.model.embed_tokens.lora_embedding_B\" [32,4] and \"base_model.model.model.embed_tokens.lora_embedding_A\" [4,128] make a [128,32] delta (transposed), but \"model.embed_tokens.weight\" in \(Self.base("qwen2")) is [160,48]"),
            ("missing adapter_config.json", noConfig, base, "no-config/adapter_config.json: missing"),
        ]
        for (name, adapter, base, culprit) in cases {
            for output in ["merged", "adapter"] {
                try HostileHarness.expectFailure(HostileCase(
                    name: "\(name), --output \(output)",
                    arguments: ["prune", "--base", base, "--finetuned", adapter, "--method", "dare", "--output", output, "--out", scratch + "/out/x"],
                    culprit: culprit, inputs: [adapter, base], watched: [scratch + "/out"]))
            }
        }
        try HostileHarness.expectFailure(HostileCase(
            name: "--output adapter from a model",
            arguments: ["prune", "--base", base, "--finetuned", base, "--method", "dare", "--output", "adapter", "--out", scratch + "/out/x"],
            culprit: "--output adapter prunes a LoRA adapter's factors", inputs: [base], watched: [scratch + "/out"]))
    }

    /// An adapter's sparse delta, applied to its base, is the merged output of the same run,
    /// tensor for tensor (both outputs read through the same adapted view).
    func testASparseDeltaFromAnAdapterAppliesToTheMergedOutput() throws {
        let base = Self.base("llama"), adapter = Self.lora("llama/adapter")
        for method in ["dare", "magnitude"] {
            let merged = scratch + "/\(method)-merged", sparse = scratch + "/\(method)-sparse", applied = scratch + "/\(method)-applied"
            for (output, folder) in [("merged", merged), ("sparse", sparse)] {
                let run = try LopperBinary.run(["prune", "--base", base, "--finetuned", adapter, "--method", method, "--set", "rate=0.9",
                                                "--seed", "3", "--output", output, "--out", folder, "--quiet"])
                XCTAssertEqual(run.status, 0, run.error)
            }
            let apply = try LopperBinary.run(["apply", "--base", base, "--delta", sparse, "--out", applied])
            XCTAssertEqual(apply.status, 0, apply.error)
            let expected = try Checkpoint(path: merged), got = try Checkpoint(path: applied)
            XCTAssertEqual(Set(got.names), Set(expected.names), method)
            for name in expected.names {
                let a = try expected.tensor(name), b = try got.tensor(name)
                XCTAssertEqual(a.dtype, b.dtype, name)
                XCTAssertEqual(Array(UnsafeRawBufferPointer(start: a.data, count: a.byteCount)),
                               Array(UnsafeRawBufferPointer(start: b.data, count: b.byteCount)), "\(method) \(name)")
            }
        }
    }

    func testLuaLoadsAndDiffsAnAdapter() throws {
        let lua = try LuaState()
        defer { lua.close() }
        let name = "model.layers.1.self_attn.q_proj.weight"
        let results = try lua.run("""
        local base, adapter, name = ...
        local ft = lopper.load(adapter, base)
        return ft[name], lopper.delta(base, adapter)[name], lopper.delta(lopper.load(base), ft)[name]
        """, arguments: [.string(Self.base("llama")), .string(Self.lora("llama/adapter")), .string(name)])
        let peft = try SafetensorsFile(path: Self.lora("llama/merged.safetensors")).tensor(name)
        let expected = try delta(peft, try Checkpoint(path: Self.base("llama")).tensor(name))
        XCTAssertLessThanOrEqual(relativeError(try XCTUnwrap(results[0].tensor), peft), 2e-6)
        XCTAssertLessThanOrEqual(relativeError(try XCTUnwrap(results[1].tensor), expected), 1e-4)
        XCTAssertEqual(try XCTUnwrap(results[2].tensor).floats(), try XCTUnwrap(results[1].tensor).floats())
    }

    func testDiffReadsAnAdapter() throws {
        let run = try LopperBinary.run(["diff", "--base", Self.base("llama"), "--finetuned", Self.lora("llama/adapter"), "--json"])
        XCTAssertEqual(run.status, 0, run.error)
        // The six adapted linear weights; untouched ones are left out like kept tensors.
        for layer in 0..<2 {
            XCTAssertTrue(run.output.contains("model.layers.\(layer).self_attn.q_proj.weight"), run.output)
        }
        XCTAssertFalse(run.output.contains("model.layers.0.self_attn.k_proj.weight"), run.output)
    }
}
