import Foundation
import LopperCore
import LopperIO

/// What the loop reports after each step.
public struct FineTuneProgress: Sendable {
    public let step: Int, totalSteps: Int, epoch: Int
    public let loss: Double
    public let tokensPerSecond: Double
    public let secondsLeft: Double
}

public struct FineTuneError: Error, CustomStringConvertible {
    public let description: String
}

/// Mini-batch training (a classifier or a language model): each epoch visits the examples in an order drawn
/// from Philox keyed by (seed, epoch), dropout keyed by (seed, step), so a run is the same
/// on any machine. A non-finite loss stops before the update that would spread it.
public final class FineTuner {
    public let model: any TrainableModel
    public let optimizer: AdamOptimizer
    public let seed: UInt64
    /// The weights before training, for `distanceFromStart` (AdamR's W0 when it has them).
    let start: [Tensor]

    public init(model: any TrainableModel, optimizer: AdamOptimizer, seed: UInt64) throws {
        self.model = model
        self.optimizer = optimizer
        self.seed = seed
        start = try optimizer.origins ?? model.parameters.all.map { try $0.value.clone() }
    }

    /// The order of epoch `epoch`: indices sorted by one uniform draw each.
    func order(count: Int, epoch: Int) throws -> [Int] {
        let draws = try uniform([count], key: RandomKey(seed: seed, name: "finetune/order/epoch \(epoch)")).floats()
        return (0..<count).sorted { (draws[$0], $0) < (draws[$1], $1) }
    }

    /// Trains for `epochs`; returns the mean training loss of each epoch.
    /// `firstEpoch` > 0 continues a run restored from a checkpoint taken after that many epochs
    /// (the same batches and dropout masks as if it had not stopped).
    public func train(_ examples: [TrainingExample], epochs: Int, batchSize: Int, firstEpoch: Int = 0,
                      progress: (FineTuneProgress) -> Void = { _ in },
                      epochEnded: (_ epoch: Int, _ meanLoss: Double) throws -> Void = { _, _ in }) throws -> [Double] {
        guard !examples.isEmpty, epochs > 0, batchSize > 0, firstEpoch < epochs else {
            throw FineTuneError(description: "nothing to train: no examples, epochs or batch")
        }
        let perEpoch = (examples.count + batchSize - 1) / batchSize, total = perEpoch * epochs
        guard optimizer.step == firstEpoch * perEpoch else {
            throw FineTuneError(description: "the checkpoint is at step \(optimizer.step), but \(firstEpoch) epochs of \(perEpoch) batches are \(firstEpoch * perEpoch) steps: was it made with this data and --batch-size?")
        }
        let started = Date()
        var tokens = 0, means: [Double] = []
        for epoch in firstEpoch..<epochs {
            let order = try order(count: examples.count, epoch: epoch)
            var sum = 0.0
            for b in 0..<perEpoch {
                let batch = order[(b * batchSize)..<min(order.count, (b + 1) * batchSize)].map { examples[$0] }
                let step = optimizer.step + 1
                model.parameters.zeroGrads()
                let loss = try model.lossAndGradients(batch, dropout: DropoutStream(seed: seed, step: step))
                guard loss.isFinite else {
                    throw FineTuneError(description: "the loss is \(loss) at step \(step) (epoch \(epoch + 1)); nothing was written: try a smaller --lr")
                }
                try optimizer.update()
                if let bad = try model.parameters.all.first(where: { try countNonFinite($0.value) != (0, 0) }) {
                    throw FineTuneError(description: "\(bad.name) is no longer finite after step \(step); nothing was written: try a smaller --lr")
                }
                sum += loss
                tokens += batch.reduce(0) { $0 + $1.ids.count }
                let elapsed = Date().timeIntervalSince(started), done = epoch * perEpoch + b + 1
                let doneHere = done - firstEpoch * perEpoch
                progress(FineTuneProgress(step: done, totalSteps: total, epoch: epoch + 1, loss: loss,
                                          tokensPerSecond: Double(tokens) / max(elapsed, 1e-9),
                                          secondsLeft: elapsed / Double(doneHere) * Double(total - done)))
            }
            means.append(sum / Double(perEpoch))
            try epochEnded(epoch + 1, means[means.count - 1])
        }
        return means
    }

    /// Accuracy of a classifier (no dropout) on `examples`, in batches.
    public func accuracy(_ examples: [TrainingExample], batchSize: Int = 32) throws -> Double {
        guard let model = model as? TrainableEncoder else { throw FineTuneError(description: "accuracy needs a classifier") }
        var right = 0
        for start in stride(from: 0, to: examples.count, by: batchSize) {
            let batch = Array(examples[start..<min(examples.count, start + batchSize)])
            let logits = try model.logits(batch.map(\.ids)).floats(), n = model.numLabels
            for (i, e) in batch.enumerated() {
                let row = logits[(i * n)..<((i + 1) * n)]
                if row.firstIndex(of: row.max()!)! - i * n == e.label { right += 1 }
            }
        }
        return examples.isEmpty ? 0 : Double(right) / Double(examples.count)
    }

    /// Perplexity of a language model on `examples`: exp of the mean next-token loss.
    public func perplexity(_ examples: [TrainingExample], batchSize: Int = 32) throws -> Double {
        guard let model = model as? TrainableDecoder else { throw FineTuneError(description: "perplexity needs a decoder") }
        var total = 0.0, count = 0
        for start in stride(from: 0, to: examples.count, by: batchSize) {
            let packed = PackedBatch(examples[start..<min(examples.count, start + batchSize)].map(\.ids))
            let (loss, _, predicted) = try nextTokenLoss(try model.forward(packed).logits, packed: packed)
            total += loss * Double(predicted)
            count += predicted
        }
        return count > 0 ? exp(total / Double(count)) : .nan
    }

    /// ||W - W_start|| over every parameter.
    public var distanceFromStart: Double {
        var total = 0.0
        for (p, o) in zip(model.parameters.all, start) {
            let w0 = floats(o)
            for i in 0..<p.count { let d = Double(p.values[i]) - Double(w0[i]); total += d * d }
        }
        return total.squareRoot()
    }
}
