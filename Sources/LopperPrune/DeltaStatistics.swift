import Foundation
import LopperCore
import LopperIO

/// Summary figures of a delta `D = W1 - W0` over one tensor or a group of tensors.
/// Group figures are exact poolings of tensor figures: count-weighted means, pooled
/// population std (within-tensor variance plus spread of the tensor means), the
/// largest |D| and the root of summed squared L2 norms.
public struct DeltaFigures: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    /// Population standard deviation.
    public var std: Double
    public var meanAbs: Double
    public var maxAbs: Double
    public var l2: Double
    /// Mean |W1| of the fine-tuned weights: the scale the delta is compared against.
    public var weightMeanAbs: Double
    /// meanAbs / weightMeanAbs: how large the delta is relative to the weights.
    public var relativeSize: Double

    public init(count: Int, mean: Double, std: Double, meanAbs: Double, maxAbs: Double, l2: Double, weightMeanAbs: Double) {
        self.count = count; self.mean = mean; self.std = std
        self.meanAbs = meanAbs; self.maxAbs = maxAbs; self.l2 = l2
        self.weightMeanAbs = weightMeanAbs
        relativeSize = Self.ratio(meanAbs, weightMeanAbs)
    }

    /// Pools `parts` as if all their elements were one tensor.
    public init(pooling parts: [DeltaFigures]) {
        let total = parts.reduce(0) { $0 + $1.count }
        guard total > 0 else {
            self.init(count: 0, mean: 0, std: 0, meanAbs: 0, maxAbs: 0, l2: 0, weightMeanAbs: 0)
            return
        }
        let n = Double(total)
        func weighted(_ value: (DeltaFigures) -> Double) -> Double {
            parts.reduce(0) { $0 + Double($1.count) * value($1) } / n
        }
        let mean = weighted(\.mean)
        // E[(x - mean)^2] over the union = mean of (std_i^2 + (mean_i - mean)^2).
        let variance = weighted { $0.std * $0.std + ($0.mean - mean) * ($0.mean - mean) }
        self.init(count: total, mean: mean, std: Swift.max(0, variance).squareRoot(), meanAbs: weighted(\.meanAbs),
                  maxAbs: parts.map(\.maxAbs).max() ?? 0, l2: parts.reduce(0) { $0 + $1.l2 * $1.l2 }.squareRoot(),
                  weightMeanAbs: weighted(\.weightMeanAbs))
    }

    static func ratio(_ a: Double, _ b: Double) -> Double {
        if b != 0 { return a / b }
        return a == 0 ? 0 : .infinity
    }
}

/// The delta figures of one tensor.
public struct TensorDelta: Codable, Sendable {
    public var name: String
    public var layer: Int?
    public var shape: [Int]
    /// Fine-tuned dtype; the base may be stored differently (both are widened to f32).
    public var dtype: String
    public var figures: DeltaFigures
}

/// The pooled delta figures of one transformer block, or of the tensors outside blocks.
public struct LayerDelta: Codable, Sendable {
    /// The block index as text, or `other` for tensors without one.
    public var name: String
    public var layer: Int?
    public var tensors: Int
    public var figures: DeltaFigures
}

/// A fault that names the tensor and what is wrong with it.
public struct DiffError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Per-tensor, per-layer and checkpoint-level statistics of the delta between a
/// fine-tuned checkpoint and its base, over the tensors a method would prune.
public struct DeltaStatistics: Codable, Sendable {
    public static let otherLayerName = "other"

    public var tensors: [TensorDelta]
    public var layers: [LayerDelta]
    public var total: DeltaFigures
    /// Tensors of the fine-tuned checkpoint left out by the selection (kept as fine-tuned).
    public var keptTensors: Int

    /// Streams over the fine-tuned checkpoint's names in order: only the tensors the
    /// selection prunes are read, one pair of mmap views and one f32 delta at a time,
    /// so memory stays a small multiple of the largest tensor.
    public static func compute(base: Checkpoint, finetuned: Checkpoint, selection: TensorSelection = TensorSelection()) throws -> DeltaStatistics {
        var tensors: [TensorDelta] = []
        var kept = 0
        for name in finetuned.names {
            guard let info = finetuned.info(name) else { continue }
            guard try selection.decide(name, base: base, finetuned: finetuned).isPrune, let baseInfo = base.info(name) else {
                kept += 1
                continue
            }
            let figures: DeltaFigures
            defer { finetuned.releasePages(of: name); base.releasePages(of: name) }
            do {
                figures = try measure(finetuned: try finetuned.tensor(name), base: try base.tensor(name))
            } catch let error as DiffError {
                throw DiffError("tensor \"\(name)\": \(error)")
            } catch let error as SafetensorsError {
                throw error
            } catch {
                throw DiffError("tensor \"\(name)\" (\(info.dtype) / base \(baseInfo.dtype)): \(error)")
            }
            tensors.append(TensorDelta(name: name, layer: layerIndex(of: name), shape: info.shape,
                                       dtype: info.dtype.name, figures: figures))
        }
        guard !tensors.isEmpty else {
            throw DiffError("no tensor of \(finetuned.path) is selected for pruning (\(kept) kept as fine-tuned); check --include/--exclude")
        }
        return DeltaStatistics(tensors: tensors, layers: groupByLayer(tensors),
                               total: DeltaFigures(pooling: tensors.map(\.figures)), keptTensors: kept)
    }


    /// One f32 delta, then reductions over it; the fine-tuned view gives mean |W|.
    static func measure(finetuned: Tensor, base: Tensor) throws -> DeltaFigures {
        let d = try delta(finetuned, base)
        let summary = try stats(d)
        // A NaN would silently poison every pooled figure: fail instead, naming the count.
        if summary.nanCount > 0 { throw DiffError("delta has \(summary.nanCount) NaN values of \(summary.count)") }
        let n = Double(d.count)
        let maxAbs = d.count == 0 ? 0 : Double(Swift.max(Swift.abs(summary.min), Swift.abs(summary.max)))
        return DeltaFigures(count: d.count, mean: d.count == 0 ? 0 : summary.mean, std: d.count == 0 ? 0 : summary.std,
                            meanAbs: d.count == 0 ? 0 : try norm(d, p: 1) / n, maxAbs: maxAbs, l2: try norm(d, p: 2),
                            weightMeanAbs: d.count == 0 ? 0 : try norm(finetuned, p: 1) / n)
    }

    /// Blocks in ascending order, then the `other` row for tensors outside blocks.
    static func groupByLayer(_ tensors: [TensorDelta]) -> [LayerDelta] {
        var groups: [Int?: [TensorDelta]] = [:]
        for tensor in tensors { groups[tensor.layer, default: []].append(tensor) }
        let keys = groups.keys.sorted { ($0 ?? Int.max) < ($1 ?? Int.max) }
        return keys.map { key in
            let members = groups[key]!
            return LayerDelta(name: key.map(String.init) ?? otherLayerName, layer: key, tensors: members.count,
                              figures: DeltaFigures(pooling: members.map(\.figures)))
        }
    }
}
