import Foundation
import LopperCore
import LopperIO

/// What `lopper prune` was asked to do.
public struct PruneConfiguration {
    public var basePath: String
    public var finetunedPath: String
    public var outputPath: String
    public var output: DeltaOutput = .merged
    /// `--output sparse` (then `output` is `.merged`: what the sparse delta rebuilds).
    public var sparse: SparseOptions?
    /// Output dtype of every tensor; nil keeps each fine-tuned tensor's dtype.
    public var dtype: DType?
    /// Largest shard in bytes; nil mirrors the fine-tuned checkpoint's shard layout.
    public var shardSize: Int?
    public var selection = TensorSelection()
    public var settings: [Setting] = []
    public var seed: UInt64 = 0
    public var overwrite = false
    public var lopperVersion = "0"
    /// A statistics file from `lopper calibrate`, handed to methods as `ctx.stats`.
    public var calibrationPath: String?
    /// The command line that asked for the run, recorded in the output.
    public var commandLine: [String] = []
    /// Write only this part of the output's shards (`--part i/n`, Pruner+Parts.swift).
    public var part: ShardPart?
    /// More `__metadata__` entries for the output (e.g. `lopper.q_choice`).
    public var extraMetadata: [String: String] = [:]

    public init(basePath: String, finetunedPath: String, outputPath: String) {
        self.basePath = basePath; self.finetunedPath = finetunedPath; self.outputPath = outputPath
    }
}

/// One tensor of the output and what will happen to it.
public struct PlannedTensor {
    public var name: String
    public var shape: [Int]
    public var sourceDType: DType
    public var outputDType: DType
    public var decision: TensorSelection.Decision
    /// Index of the fine-tuned shard that holds it (the default output layout).
    public var shard: Int
    public var byteCount: Int

    public var isPruned: Bool { decision.isPrune }
}

/// Prunes the delta between two checkpoints with a method, streaming tensor by tensor
/// from mmap views: at any time it holds the two input views, the method's working
/// tensors for one tensor and the output being written. Kernels use every thread;
/// their results do not depend on the thread count, so neither does the output.
public final class Pruner {
    public let configuration: PruneConfiguration
    public let method: PruneMethod
    public let base: Checkpoint
    public let finetuned: Checkpoint
    public private(set) var plan: [PlannedTensor] = []
    public let layerCount: Int
    public let calibration: CalibrationStatistics?
    /// `granularity = model`'s first pass, made when the first tensor is processed.
    var preparedModelSelection: PreparedModelSelection?

    public init(_ configuration: PruneConfiguration, method: PruneMethod) throws {
        self.configuration = configuration
        self.method = method
        try method.schema.validate(configuration.settings)
        base = try Checkpoint(path: configuration.basePath)
        finetuned = try Checkpoint.finetuned(path: configuration.finetunedPath, base: base)
        guard !finetuned.names.isEmpty else { throw PruneError("\(configuration.finetunedPath): the checkpoint holds no tensors") }
        for setting in configuration.settings {
            guard let glob = setting.glob, !finetuned.names.contains(where: glob.matches) else { continue }
            throw ParamError("setting '\(glob.pattern):\(setting.key)=\(setting.text)' matches no tensor of \(configuration.finetunedPath)")
        }
        layerCount = try LopperPrune.layerCount(of: finetuned.names)
        calibration = try configuration.calibrationPath.map { try CalibrationStatistics(path: $0) }
        plan = try makePlan()
        try checkPart()
        if let calibration {
            try calibration.check(against: plan.filter(\.isPruned).map { ($0.name, $0.shape) })
        }
    }

    private func makePlan() throws -> [PlannedTensor] {
        if configuration.output == .adapter { return try makeAdapterPlan() }
        var shardOf: [String: Int] = [:]
        for (index, shard) in finetuned.shards.enumerated() { for name in shard.names { shardOf[name] = index } }
        let selection = configuration.selection
        var planned: [PlannedTensor] = []
        for name in finetuned.names {
            guard let info = finetuned.info(name) else { continue }
            var decision = try selection.decide(name, base: base, finetuned: finetuned)
            if !decision.isPrune, configuration.output == .delta, base.info(name) == nil {
                decision = .keep("not in base: written as fine-tuned values")
            }
            var outputDType = info.dtype
            if let wanted = configuration.dtype, info.dtype.isComputable { outputDType = wanted }
            planned.append(PlannedTensor(name: name, shape: info.shape, sourceDType: info.dtype, outputDType: outputDType,
                                         decision: decision, shard: shardOf[name] ?? 0,
                                         byteCount: info.shape.reduce(1, *) * outputDType.byteSize))
        }
        return planned
    }

    /// The parameters as the run records them, typed: defaults and global settings,
    /// then glob settings keyed as written (`GLOB:key`).
    public var recordedParameters: [String: ParamValue] {
        var values: [String: ParamValue] = [:]
        for spec in method.schema.specs { if let value = spec.defaultValue { values[spec.name] = value } }
        for setting in configuration.settings {
            let key = setting.glob.map { "\($0.pattern):\(setting.key)" } ?? setting.key
            values[key] = (try? method.schema.parse(setting)) ?? .string(setting.text)
        }
        return values
    }

    /// What `--dry-run` prints: the plan and each pruned tensor's parameters.
    public func dryRunText() throws -> String {
        var rows: [[String]] = []
        for tensor in plan {
            switch tensor.decision {
            case .prune:
                let parameters = try method.schema.resolve(configuration.settings, name: tensor.name,
                                                           layer: layerIndex(of: tensor.name), layerCount: layerCount)
                rows.append([tensor.name, tensor.shape.shapeText, tensor.outputDType.name, "prune",
                             parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")])
            case .keep(let reason):
                rows.append([tensor.name, tensor.shape.shapeText, tensor.outputDType.name, "keep", reason])
            }
        }
        let pruned = plan.filter(\.isPruned).count
        return (renderTable(header: ["tensor", "shape", "dtype", "action", "parameters / reason"], rows: rows)
                + ["\(pruned) of \(plan.count) tensors would be pruned with \(method.name) \(method.version), seed \(configuration.seed); nothing written (dry run)"])
            .joined(separator: "\n")
    }

    /// Runs the method over every tensor and writes the output folder (shards, index,
    /// config and tokenizer files). Nothing is left behind on failure.
    @discardableResult
    public func run(progress: Progress? = nil) throws -> RunReport {
        if let sparse = configuration.sparse { return try runSparse(sparse, progress: progress) }
        let started = Date()
        var report = RunReport(lopperVersion: configuration.lopperVersion, method: method.name,
                               parameters: recordedParameters, seed: configuration.seed, output: configuration.output.rawValue)
        report.methodVersion = method.version
        let metadata = try runMetadata(report)
        let writer = configuration.output == .adapter ? try makeAdapterWriter(metadata: metadata)
                                                      : try makeWriter(metadata: metadata)
        let planned = Dictionary(plan.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var bytesDone = 0
        try writer.writeAll(copying: configuration.output == .adapter ? finetuned.adapter?.file : finetuned, progress: { done, bytes, name in
            progress?.update(tensors: done, bytes: bytes, current: name)
            bytesDone = bytes
        }, tensor: { entry in
            guard let tensor = planned[entry.name] else { throw PruneError("tensor \"\(entry.name)\" is not in the plan") }
            let (output, tensorReport) = try process(tensor)
            report.bytesRead += tensor.shape.reduce(1, *) * tensor.sourceDType.byteSize * (tensorReport.action == "pruned" ? 2 : 1)
            report.tensors.append(tensorReport)
            return output
        }, written: { [finetuned, base] entry in
            finetuned.releasePages(of: entry.name)
            base.releasePages(of: entry.name)
        })
        progress?.finish()
        report.bytesWritten = bytesDone
        report.seconds = Date().timeIntervalSince(started)
        return report
    }

    /// The output's `__metadata__`: how the run was made (`RunProvenance`), then `extraMetadata`.
    func runMetadata(_ report: RunReport) throws -> [String: String] {
        try RunProvenance(configuration: configuration, method: method, parameters: report.parameters).metadata
            .merging(configuration.extraMetadata) { own, _ in own }
    }

    private func makeWriter(metadata: [String: String]) throws -> ShardedWriter {
        if let part = configuration.part {
            return try ShardParts.writer(folder: configuration.outputPath, layout: outputLayout, part: part,
                                         metadata: metadata, overwrite: configuration.overwrite, source: finetuned)
        }
        return try ShardedWriter(folder: configuration.outputPath, shards: outputLayout, metadata: metadata,
                                 overwrite: configuration.overwrite, source: finetuned)
    }

    /// One tensor: the output to write and its report line.
    func process(_ tensor: PlannedTensor) throws -> (Tensor, TensorReport) {
        let selection = try modelSelection()
        if configuration.output == .adapter { return try processFactor(tensor) }
        let layer = layerIndex(of: tensor.name)
        let finetunedTensor = try finetuned.tensor(tensor.name)
        guard case .prune = tensor.decision else {
            var line = TensorReport(name: tensor.name, shape: tensor.shape, dtype: tensor.outputDType.name, action: "kept", layer: layer)
            if case .keep(let reason) = tensor.decision { line.reason = reason }
            return (try keptOutput(tensor, finetunedTensor), line)
        }
        var job = try job(for: tensor, finetuned: finetunedTensor)
        job.modelSelection = selection
        return try method.run(job)
    }

    /// What the method is given for a pruned tensor.
    func job(for tensor: PlannedTensor, finetuned finetunedTensor: Tensor? = nil) throws -> PruneJob {
        let parameters = try method.schema.resolve(configuration.settings, name: tensor.name,
                                                   layer: layerIndex(of: tensor.name), layerCount: layerCount)
        var job = PruneJob(name: tensor.name, layerCount: layerCount, base: try base.tensor(tensor.name),
                           finetuned: try finetunedTensor ?? finetuned.tensor(tensor.name), parameters: parameters,
                           seed: configuration.seed, output: configuration.output, outputDType: tensor.outputDType)
        if let calibration { job.statistics = try calibration.statistics(for: tensor.name) }
        return job
    }

    private func keptOutput(_ tensor: PlannedTensor, _ finetunedTensor: Tensor) throws -> Tensor {
        if configuration.output == .delta, base.info(tensor.name)?.shape == tensor.shape, tensor.sourceDType.isComputable {
            return try delta(finetunedTensor, try base.tensor(tensor.name), dtype: tensor.outputDType)
        }
        return tensor.outputDType == finetunedTensor.dtype ? finetunedTensor : try finetunedTensor.converted(to: tensor.outputDType)
    }
}

public struct PruneError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
