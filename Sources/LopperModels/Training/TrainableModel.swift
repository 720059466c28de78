import LopperCore

/// A tokenized sequence and, for classification, its label id.
public struct TrainingExample: Sendable, Equatable {
    public let ids: [Int]
    public let label: Int?

    public init(ids: [Int], label: Int? = nil) {
        self.ids = ids
        self.label = label
    }
}

/// A model `FineTuner` can train: parameters, and the loss of a batch with its gradients.
public protocol TrainableModel: AnyObject {
    var config: ModelConfig { get }
    var parameters: ParameterSet { get }
    /// The mean loss of `batch`; gradients are added to `parameters` (zero them first).
    func lossAndGradients(_ batch: [TrainingExample], dropout: DropoutStream?) throws -> Double
}

extension TrainableEncoder: TrainableModel {
    public func lossAndGradients(_ batch: [TrainingExample], dropout: DropoutStream?) throws -> Double {
        let labels = try batch.map { e -> Int in
            guard let label = e.label else { throw ModelError.badInput("sequence classification needs a label for every example") }
            return label
        }
        return try lossAndGradients(batch.map(\.ids), labels: labels, dropout: dropout)
    }
}
