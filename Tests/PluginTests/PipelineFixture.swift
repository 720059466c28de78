import Foundation
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// A small base / fine-tuned pair in a temporary folder, laid out like a Hugging Face
/// checkpoint: two shards with an index, config.json, two transformer blocks with
/// linear weights and biases, an embedding, norms and a head. Deltas are known.
struct PipelineFixture {
    let folder: String
    var base: String { folder + "/base" }
    var finetuned: String { folder + "/finetuned" }

    static let rows = 128, cols = 256
    static let prunable = (0..<2).flatMap { layer in
        ["model.layers.\(layer).mlp.up_proj.weight", "model.layers.\(layer).mlp.up_proj.bias",
         "model.layers.\(layer).self_attn.q_proj.weight"]
    }
    static let kept = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight", "lm_head.weight"]

    /// `dtype` for every tensor; `nanIn` puts a NaN into that fine-tuned tensor.
    init(dtype: DType = .f32, nanIn: String? = nil) throws {
        folder = NSTemporaryDirectory() + "lopper-pipeline-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var shapes: [(String, [Int])] = [("model.embed_tokens.weight", [64, 32])]
        for layer in 0..<2 {
            shapes.append(("model.layers.\(layer).input_layernorm.weight", [32]))
            shapes.append(("model.layers.\(layer).mlp.up_proj.weight", [Self.rows, Self.cols]))
            shapes.append(("model.layers.\(layer).mlp.up_proj.bias", [Self.rows]))
            shapes.append(("model.layers.\(layer).self_attn.q_proj.weight", [64, 96]))
        }
        shapes += [("model.norm.weight", [32]), ("lm_head.weight", [64, 32])]
        for (which, isFinetuned) in [("base", false), ("finetuned", true)] {
            var tensors: [(String, Tensor)] = []
            for (name, shape) in shapes {
                var tensor = try uniform(shape, key: RandomKey(seed: 3, name: "w/" + name))
                if isFinetuned {
                    // delta = 0.01 + 0.01 * U(0,1): never zero, mean 0.015.
                    let noise = try add(try scale(try uniform(shape, key: RandomKey(seed: 4, name: "d/" + name)), 0.01), 0.01)
                    tensor = try add(tensor, noise)
                    if name == nanIn { tensor.storeScalar(.nan, at: 5) }
                }
                tensors.append((name, try tensor.converted(to: dtype)))
            }
            let entries = tensors.map { SafetensorsWriter.Entry(name: $0.0, dtype: $0.1.dtype, shape: $0.1.shape) }
            let writer = try ShardedWriter(folder: folder + "/" + which, shards: [Array(entries[..<5]), Array(entries[5...])])
            for (name, tensor) in tensors { try writer.write(tensor, name: name) }
            try writer.finish()
            try Data("{\"model_type\": \"llama\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/" + which + "/config.json"))
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }

    static var pluginsFolder: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Plugins").path
    }

    static func plugin(_ name: String) throws -> Plugin {
        try Plugin(path: pluginsFolder + "/" + name + ".lua")
    }

    /// Runs `method` with `settings` into `out` (under the fixture folder) and returns the report.
    @discardableResult
    func prune(_ method: PruneMethod, _ settings: [String] = [], out: String = "out", seed: UInt64 = 1,
               output: DeltaOutput = .merged, dtype: DType? = nil, shardSize: Int? = nil) throws -> RunReport {
        var configuration = PruneConfiguration(basePath: base, finetunedPath: finetuned, outputPath: folder + "/" + out)
        configuration.settings = try settings.map(Setting.init(parsing:))
        configuration.seed = seed
        configuration.output = output
        configuration.dtype = dtype
        configuration.shardSize = shardSize
        configuration.overwrite = true
        return try Pruner(configuration, method: method).run()
    }

    func tensor(_ out: String, _ name: String) throws -> Tensor { try Checkpoint(path: folder + "/" + out).tensor(name) }
    func baseTensor(_ name: String) throws -> Tensor { try Checkpoint(path: base).tensor(name) }
    func finetunedTensor(_ name: String) throws -> Tensor { try Checkpoint(path: finetuned).tensor(name) }

    /// The fine-tuned minus base delta of `name`, computed in Double.
    func delta(_ name: String) throws -> [Double] {
        let b = try baseTensor(name).floats(), f = try finetunedTensor(name).floats()
        return zip(f, b).map { Double($0) - Double($1) }
    }

    /// Bytes of every file in output `out`, by file name.
    func files(_ out: String) throws -> [String: Data] {
        let path = folder + "/" + out
        var result: [String: Data] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: path) {
            result[file] = try Data(contentsOf: URL(fileURLWithPath: path + "/" + file))
        }
        return result
    }
}

extension Tensor {
    func bytes() -> Data { Data(bytes: data, count: byteCount) }
}
