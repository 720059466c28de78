import Foundation
import LopperIO

/// Language-model data: JSONL with a `text` per line (one sequence each, special tokens added,
/// cut at the sequence length) or plain text cut into chunks, as `CalibrationText` reads it;
/// a `label` in a JSONL record is an error (that is classification data).
public enum LanguageModelData {
    public static func load(path: String, tokenizer: Tokenizer, sequenceLength: Int, context: Int?) throws -> (examples: [TrainingExample], warnings: [String]) {
        if path.hasSuffix(".jsonl") || path.hasSuffix(".json") {
            let data: Data
            do { data = try readFile(path) } catch { throw ModelError.badInput("\(error)") }
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard line.contains("\"label\""),
                      let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["label"] != nil else { continue }
                throw ModelError.badInput("\(path):\(number + 1): a \"label\" in language-model data (--task lm trains on \"text\" alone; labelled data is for --task classify)")
            }
        }
        let text = try CalibrationText(path: path, tokenizer: tokenizer, sequenceLength: sequenceLength, context: context)
        let examples = text.sequences.filter { $0.count > 1 }.map { TrainingExample(ids: $0) }
        guard !examples.isEmpty else { throw ModelError.badInput("\(path): no sequence of 2 or more tokens to learn from") }
        return (examples, text.warnings)
    }
}
