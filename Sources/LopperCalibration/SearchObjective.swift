import Foundation
import LopperCore
import LopperIO
import LopperModels

/// What a q (or eta) search optimises, on text or labeled records.
public enum SearchObjective {
    /// DAREx's unlabeled output change against the fine-tuned model (lower is better).
    case outputChange(CalibrationText)
    /// Perplexity of a decoder on the text (lower is better).
    case perplexity(CalibrationText)
    /// Accuracy or Matthews correlation of a sequence classifier's argmax on labeled records.
    case labeled(LabeledText, LabeledMetric)
    /// Any score of the candidate model, e.g. a Lua `metric(model)`.
    case custom(name: String, higherIsBetter: Bool, score: (LanguageModel) throws -> Double)

    public var name: String {
        switch self {
        case .outputChange: return "output-change"
        case .perplexity: return "perplexity"
        case .labeled(_, let metric): return metric.rawValue
        case .custom(let name, _, _): return name
        }
    }

    public var higherIsBetter: Bool {
        switch self {
        case .outputChange, .perplexity: return false
        case .labeled: return true
        case .custom(_, let higher, _): return higher
        }
    }
}

public enum LabeledMetric: String, CaseIterable, Sendable {
    case accuracy, mcc

    /// The metric of predicted against true class indices.
    public func value(predicted: [Int], truth: [Int], classes: Int) -> Double {
        let total = Double(truth.count)
        guard total > 0 else { return 0 }
        let correct = Double(zip(predicted, truth).filter { $0 == $1 }.count)
        switch self {
        case .accuracy: return correct / total
        case .mcc:
            // Multi-class Matthews correlation (Gorodkin 2004), 0 when undefined (as scikit-learn).
            var predictedCounts = [Double](repeating: 0, count: classes), trueCounts = predictedCounts
            for (p, t) in zip(predicted, truth) { predictedCounts[p] += 1; trueCounts[t] += 1 }
            let covariance = correct * total - zip(predictedCounts, trueCounts).reduce(0) { $0 + $1.0 * $1.1 }
            let left = total * total - predictedCounts.reduce(0) { $0 + $1 * $1 }
            let right = total * total - trueCounts.reduce(0) { $0 + $1 * $1 }
            guard left > 0, right > 0 else { return 0 }
            return covariance / (left * right).squareRoot()
        }
    }
}

/// Labeled records for a sequence classifier: JSONL with `text` and `label` per line; a label is
/// a class index or a name from the model's `id2label` / `label2id`.
public struct LabeledText {
    public enum Label: Sendable { case index(Int), name(String) }
    public let path: String
    public var sequences: [[Int]]
    public var labels: [Label]
    /// Line number of each record (for errors).
    public var lines: [Int]

    public init(path: String, tokenizer: Tokenizer, sequenceLength: Int, maxSequences: Int? = nil, context: Int? = nil) throws {
        self.path = path
        let data: Data
        do { data = try readFile(path) } catch { throw ModelError.badInput("\(error)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ModelError.badInput("\(path): not UTF-8 text") }
        let length = Swift.min(sequenceLength, context ?? sequenceLength)
        var sequences: [[Int]] = [], labels: [Label] = [], lines: [Int] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let object = try? JSON.parse(trimmed), case .string(let record)? = object["text"] else {
                throw ModelError.badInput("\(path):\(number + 1): expected a JSON object with a \"text\" string and a \"label\"")
            }
            let label: Label
            switch object["label"] {
            case .string(let name)?: label = .name(name)
            case .number(let value, _)? where value.rounded() == value && Swift.abs(value) < 1e9: label = .index(Int(value))
            default:
                throw ModelError.badInput("\(path):\(number + 1): a labeled metric needs \"label\" (a class index or name) in every record")
            }
            let ids = tokenizer.encode(record, maxLength: length)
            guard !ids.isEmpty else { continue }
            sequences.append(ids); labels.append(label); lines.append(number + 1)
            if let maxSequences, sequences.count >= maxSequences { break }
        }
        guard !sequences.isEmpty else { throw ModelError.badInput("\(path): no labeled records") }
        self.sequences = sequences; self.labels = labels; self.lines = lines
    }

    /// Class indices for a head of `classes` outputs; `names` maps label names (config `label2id`).
    public func classIndices(classes: Int, names: [String: Int], model: String) throws -> [Int] {
        try zip(labels, lines).map { label, line in
            let index: Int
            switch label {
            case .index(let value): index = value
            case .name(let name):
                guard let value = names[name] else {
                    let known = names.keys.sorted().joined(separator: ", ")
                    throw ModelError.badInput("\(path):\(line): label \"\(terminalSafe(name))\" is not a label of \(model)'s head (\(known.isEmpty ? "its config has no id2label; use class indices" : known))")
                }
                index = value
            }
            guard index >= 0, index < classes else {
                throw ModelError.badInput("\(path):\(line): label \(index) is not a label of \(model)'s head (\(classes) classes: 0-\(classes - 1))")
            }
            return index
        }
    }

    /// Label names from a model folder's config.json (`label2id`, else `id2label`).
    public static func labelNames(configFolder: String) -> [String: Int] {
        guard let data = try? readFile((configFolder as NSString).appendingPathComponent("config.json")),
              let json = try? JSON.parse(String(decoding: data, as: UTF8.self)) else { return [:] }
        var names: [String: Int] = [:]
        if case .object(let members)? = json["label2id"] {
            for (name, value) in members { if case .number(let index, _) = value { names[name] = Int(index) } }
        } else if case .object(let members)? = json["id2label"] {
            for (key, value) in members { if let index = Int(key), case .string(let name) = value { names[name] = index } }
        }
        return names
    }
}

extension LabeledMetric {
    /// The metric of a sequence classifier's argmax on labeled records (label names: config `label2id`).
    public func evaluate(_ model: LanguageModel, on records: LabeledText, labelNames: [String: Int], modelName: String) throws -> Double {
        let (predicted, classes) = try classPredictions(model, records.sequences, modelName: modelName)
        let truth = try records.classIndices(classes: classes, names: labelNames, model: modelName)
        return value(predicted: predicted, truth: truth, classes: classes)
    }
}

/// The argmax class of each sequence and the head's class count; throws when there is no classification head.
func classPredictions(_ model: LanguageModel, _ sequences: [[Int]], modelName: String) throws -> (classes: [Int], count: Int) {
    guard model.config.architecture == .bert, let logits = try model.forward(sequences).logits, let first = logits.first else {
        throw ModelError.badInput("a labeled metric needs a sequence classifier, but \(modelName) has no classification head (classifier.*)")
    }
    let predicted = logits.map { row in
        let values = row.floats()
        return values.indices.max { values[$0] < values[$1] } ?? 0
    }
    return (predicted, first.count)
}
