import Foundation
import LopperCore
import LopperIO

/// The state of a run after an epoch, in `FOLDER/training-state.safetensors`: every
/// parameter (`w.NAME`), both moments (`m.NAME`, `v.NAME`), the epoch and step, and the run's
/// identity (base, data, optimizer settings) so that a resume continues the same run and
/// refuses another. Written whole and renamed into place: a crash keeps the previous one.
public struct TrainingCheckpoint {
    public static let fileName = "training-state.safetensors"
    public let epoch: Int
    public let step: Int
    public let identity: [String: String]
    let file: SafetensorsFile

    public static func exists(in folder: String) -> Bool { FileManager.default.fileExists(atPath: folder + "/" + fileName) }

    public static func write(to folder: String, parameters: ParameterSet, optimizer: AdamOptimizer, epoch: Int,
                             identity: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let tensors = parameters.all.map { ("w." + $0.name, $0.value) } + optimizer.moments
        var metadata = ["lopper.training.epoch": String(epoch), "lopper.training.step": String(optimizer.step)]
        for (key, value) in identity { metadata["lopper.training." + key] = value }
        try saveSafetensors(tensors, to: folder + "/" + fileName, metadata: metadata)
    }

    public init(folder: String) throws {
        let path = folder + "/" + Self.fileName
        file = try SafetensorsFile(path: path)
        guard let epoch = file.metadata["lopper.training.epoch"].flatMap(Int.init), let step = file.metadata["lopper.training.step"].flatMap(Int.init),
              epoch >= 0, step >= 0 else {
            throw ModelError.badInput("\(path): not a Lopper training state (no epoch and step in its metadata)")
        }
        self.epoch = epoch
        self.step = step
        var identity: [String: String] = [:]
        for (key, value) in file.metadata where key.hasPrefix("lopper.training.") && key != "lopper.training.epoch" && key != "lopper.training.step" {
            identity[String(key.dropFirst("lopper.training.".count))] = value
        }
        self.identity = identity
    }

    /// Checks the identity against this run's, then loads weights and moments.
    public func restore(_ parameters: ParameterSet, _ optimizer: AdamOptimizer, identity expected: [String: String], folder: String) throws {
        for key in expected.keys.sorted() where identity[key] != expected[key] {
            throw ModelError.badInput("\(folder)/\(Self.fileName) is the state of another run: its \(key) is \(identity[key] ?? "(none)"), this run's is \(expected[key]!)")
        }
        func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let info = file.info(name) else { throw ModelError.badInput("\(folder)/\(Self.fileName) has no \(name): the state of another model") }
            guard info.shape == shape, info.dtype == .f32 else {
                throw ModelError.badInput("\(folder)/\(Self.fileName): \(name) is \(info.shape.shapeText) \(info.dtype), this model's is \(shape.shapeText) F32")
            }
            return try file.tensor(name)
        }
        for p in parameters.all {
            floats(p.value).update(from: floats(try tensor("w." + p.name, p.shape)), count: p.count)
        }
        let shapes = Dictionary(uniqueKeysWithValues: parameters.all.map { ($0.name, $0.shape) })
        try optimizer.restore(step: step) { key in try tensor(key, shapes[String(key.dropFirst(2))] ?? []) }
    }
}
