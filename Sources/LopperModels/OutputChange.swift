import Foundation
import LopperCore

/// How far a (pruned) model's outputs are from a reference model's on the same text,
/// as the DAREx paper measures it: for encoders the mean |difference| of the last
/// hidden states; for decoders the mean squared difference of the logits at the
/// reference model's top-5 tokens of every position.
public enum OutputChange {
    public static func measure(_ candidate: ModelOutput, reference: ModelOutput, architecture: Architecture) throws -> Double {
        switch architecture {
        case .bert:
            var total = 0.0, count = 0
            for (a, b) in zip(candidate.hidden, reference.hidden) {
                guard a.shape == b.shape else { throw ModelError.badInput("output change: shapes \(a.shape.shapeText) vs \(b.shape.shapeText)") }
                let x = a.floats(), y = b.floats()
                for index in x.indices { total += Swift.abs(Double(x[index]) - Double(y[index])) }
                count += x.count
            }
            return count > 0 ? total / Double(count) : 0
        case .llama:
            guard let candidates = candidate.logits, let references = reference.logits else {
                throw ModelError.badInput("output change: decoder outputs without logits")
            }
            var total = 0.0, count = 0
            for (a, b) in zip(candidates, references) {
                guard a.shape == b.shape, a.rank == 2 else { throw ModelError.badInput("output change: shapes \(a.shape.shapeText) vs \(b.shape.shapeText)") }
                let vocab = a.shape[1], x = a.floats(), y = b.floats()
                for position in 0..<a.shape[0] {
                    let row = position * vocab
                    for token in topIndices(y, from: row, count: vocab, k: Swift.min(5, vocab)) {
                        let difference = Double(x[row + token]) - Double(y[row + token])
                        total += difference * difference
                        count += 1
                    }
                }
            }
            return count > 0 ? total / Double(count) : 0
        }
    }

    /// Indices (relative to `from`) of the k largest of `values[from ..< from + count]`.
    static func topIndices(_ values: [Float], from: Int, count: Int, k: Int) -> [Int] {
        var best: [(Float, Int)] = []
        for index in 0..<count {
            let value = values[from + index]
            if best.count < k { best.append((value, index)); best.sort { $0.0 > $1.0 }; continue }
            if value > best[k - 1].0 { best[k - 1] = (value, index); best.sort { $0.0 > $1.0 } }
        }
        return best.map(\.1)
    }

    /// The output change between two models over `text` (each sequence run on its own).
    public static func between(_ candidate: LanguageModel, _ reference: LanguageModel, on text: CalibrationText) throws -> Double {
        try measure(candidate.forward(text.sequences), reference: reference.forward(text.sequences),
                    architecture: reference.config.architecture)
    }
}

/// Perplexity of a decoder on token sequences: exp of the mean negative log-likelihood
/// of each next token (sequences of one token contribute nothing).
public func perplexity(_ model: LanguageModel, on text: CalibrationText) throws -> Double {
    guard model.config.architecture == .llama else {
        throw ModelError.badInput("perplexity needs a decoder (a causal language model); \(model.config.modelType) is an encoder")
    }
    var negativeLogLikelihood = 0.0, count = 0
    for sequence in text.sequences where sequence.count > 1 {
        guard let logits = try model.forward([sequence]).logits?.first else { continue }
        let vocab = logits.shape[1], values = logits.floats()
        for position in 0..<(sequence.count - 1) {
            let row = position * vocab
            var largest = -Double.infinity
            for token in 0..<vocab { largest = Swift.max(largest, Double(values[row + token])) }
            var sum = 0.0
            for token in 0..<vocab { sum += Foundation.exp(Double(values[row + token]) - largest) }
            let target = sequence[position + 1]
            negativeLogLikelihood -= Double(values[row + target]) - largest - Foundation.log(sum)
            count += 1
        }
    }
    guard count > 0 else { throw ModelError.badInput("perplexity: no sequence has two or more tokens") }
    return Foundation.exp(negativeLogLikelihood / Double(count))
}
