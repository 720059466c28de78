import Foundation

/// HF `WordPiece`: greedy longest-match-first over a word's Unicode scalars.
final class WordPieceModel: TokenizerModel {
    let vocab: Vocab
    let unkID: Int?
    let prefix: String
    let maxChars: Int

    init(_ json: [String: Any], _ ctx: ParseContext) throws {
        guard let v = json["vocab"] as? [String: Any] else { throw ctx.bad("model WordPiece", "no vocab") }
        var vocab: Vocab = [:]
        vocab.reserveCapacity(v.count)
        for (k, id) in v {
            guard let i = jsonInt(id) else { throw ctx.bad("model WordPiece", "vocab id of \(k) is not an integer") }
            vocab[TokenKey(k)] = i
        }
        self.vocab = vocab
        let unk = json["unk_token"] as? String ?? "[UNK]"
        unkID = vocab[TokenKey(unk)]
        prefix = json["continuing_subword_prefix"] as? String ?? "##"
        maxChars = jsonInt(json["max_input_chars_per_word"]) ?? 100
    }

    func tokenize(_ word: String) -> [Int] {
        let scalars = Array(word.unicodeScalars)
        let unk = unkID.map { [$0] } ?? []
        if scalars.count > maxChars { return unk }
        var ids: [Int] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int? = nil
            while start < end {
                var v = String.UnicodeScalarView()
                v.append(contentsOf: scalars[start..<end])
                let piece = start > 0 ? prefix + String(v) : String(v)
                if let id = vocab[TokenKey(piece)] { found = id; break }
                end -= 1
            }
            guard let id = found else { return unk }
            ids.append(id)
            start = end
        }
        return ids
    }
}
