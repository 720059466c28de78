import Foundation
import LopperIO

/// Calibration and evaluation text as token sequences: JSONL with a `text` field (one
/// record, one sequence) or plain text cut into chunks of `sequenceLength` tokens.
public struct CalibrationText {
    public var sequences: [[Int]]
    /// Things a user should know (records truncated to the context, empty records skipped).
    public var warnings: [String]

    /// Reads `path`: `.jsonl`/`.json` files as JSONL, anything else as plain text.
    /// Sequences are at most `sequenceLength` tokens (and the model's context);
    /// at most `maxSequences` are kept.
    public init(path: String, tokenizer: Tokenizer, sequenceLength: Int, maxSequences: Int? = nil,
                context: Int? = nil) throws {
        guard sequenceLength > 0 else { throw ModelError.badInput("sequence length must be positive") }
        let data: Data
        do { data = try readFile(path) } catch { throw ModelError.badInput("\(error)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ModelError.badInput("\(path): not UTF-8 text") }
        var length = sequenceLength
        var warnings: [String] = []
        if let context, context < length {
            warnings.append("sequence length \(length) is longer than the model's context \(context): using \(context)")
            length = context
        }
        var sequences: [[Int]] = []
        if path.hasSuffix(".jsonl") || path.hasSuffix(".json") {
            var truncated = 0
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                      let record = object["text"] as? String else {
                    throw ModelError.badInput("\(path):\(number + 1): expected a JSON object with a \"text\" string")
                }
                let ids = tokenizer.encode(record)
                if ids.count > length { truncated += 1 }
                if !ids.isEmpty { sequences.append(tokenizer.encode(record, maxLength: length)) }
                if let maxSequences, sequences.count >= maxSequences { break }
            }
            if truncated > 0 { warnings.append("\(truncated) record(s) longer than \(length) tokens were truncated") }
        } else {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            var start = 0
            while start < ids.count {
                sequences.append(Array(ids[start..<min(ids.count, start + length)]))
                start += length
                if let maxSequences, sequences.count >= maxSequences { break }
            }
        }
        guard !sequences.isEmpty else { throw ModelError.badInput("\(path): no text to use") }
        self.sequences = sequences
        self.warnings = warnings
    }

    public init(sequences: [[Int]]) {
        self.sequences = sequences
        warnings = []
    }

    public var tokenCount: Int { sequences.reduce(0) { $0 + $1.count } }
}
