import Foundation
import LopperIO

/// Sequence-classification data: JSONL, one `{"text": ..., "label": ...}` per line. Labels
/// are names (strings) or integer ids. Against a model with a head (`modelLabels`, its
/// id2label in id order), a label is one of those names or an id below their count; for a
/// model without one the labels are the data's distinct values (integers in numeric order,
/// otherwise names sorted), and the new head gets that many outputs.
public struct ClassificationData {
    public let examples: [TrainingExample]
    /// Label names in id order (the head's id2label).
    public let labelNames: [String]
    /// Records longer than the sequence length (cut on the right, special tokens kept).
    public let truncated: Int

    public init(path: String, tokenizer: Tokenizer, sequenceLength: Int, modelLabels: [String]?) throws {
        let data: Data
        do { data = try readFile(path) } catch { throw ModelError.badInput("\(error)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ModelError.badInput("\(path): not UTF-8 text") }
        var records: [(line: Int, text: String, label: String, isInteger: Bool)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let at = "\(path):\(number + 1)"
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                  let record = object["text"] as? String else {
                throw ModelError.badInput("\(at): expected a JSON object with a \"text\" string")
            }
            switch object["label"] {
            case nil, is NSNull:
                throw ModelError.badInput("\(at): no \"label\" (sequence classification needs one per record)")
            case let name as String:
                records.append((number + 1, record, name, false))
            case let value as NSNumber:
                let d = value.doubleValue
                guard d.isFinite, d == d.rounded(), d >= 0, d < 1e9 else {
                    throw ModelError.badInput("\(at): label \(value) is not a label id (a whole number from 0) or name")
                }
                records.append((number + 1, record, String(Int(d)), true))
            default:
                throw ModelError.badInput("\(at): \"label\" must be a string or a whole number")
            }
        }
        guard !records.isEmpty else { throw ModelError.badInput("\(path): no examples (expected JSONL records with \"text\" and \"label\")") }
        let names: [String]
        if let modelLabels {
            names = modelLabels
        } else {
            let distinct = Set(records.map(\.label))
            names = records.allSatisfy(\.isInteger) ? distinct.sorted { Int($0)! < Int($1)! } : distinct.sorted()
            guard names.count >= 2 else {
                throw ModelError.badInput("\(path): every record has the label \"\(names[0])\"; classification needs at least 2 labels")
            }
        }
        let ids = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var examples: [TrainingExample] = [], truncated = 0
        for r in records {
            let label: Int
            if let id = ids[r.label] {
                label = id
            } else if modelLabels != nil, r.isInteger, let id = Int(r.label), id < names.count {
                label = id
            } else {
                let known = names.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ") + (names.count > 8 ? ", ..." : "")
                throw ModelError.badInput("\(path):\(r.line): label \"\(r.label)\" is not one of the model's \(names.count) labels (\(known), or ids 0-\(names.count - 1))")
            }
            let full = tokenizer.encode(r.text)
            if full.count > sequenceLength { truncated += 1 }
            let tokens = full.count > sequenceLength ? tokenizer.encode(r.text, maxLength: sequenceLength) : full
            guard !tokens.isEmpty else { throw ModelError.badInput("\(path):\(r.line): the text gives no tokens") }
            examples.append(TrainingExample(ids: tokens, label: label))
        }
        self.examples = examples
        labelNames = names
        self.truncated = truncated
    }
}
