import Foundation

/// HF `BPE`: merges by rank over a word's characters, with a per-word cache.
/// Byte-level files (GPT-2, Llama 3, Qwen2) see words already mapped to byte characters
/// by the `ByteLevel` pre-tokenizer.
final class BPEModel: TokenizerModel {
    let vocab: Vocab
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private let unkID: Int?
    private let fuseUnk: Bool
    private let byteFallback: Bool
    private let ignoreMerges: Bool
    private let prefix: String
    private let suffix: String
    private var cache: [TokenKey: [Int]] = [:]
    private let lock = NSLock()

    init(_ json: [String: Any], _ ctx: ParseContext) throws {
        guard let v = json["vocab"] as? [String: Any] else { throw ctx.bad("model BPE", "no vocab") }
        var vocab: Vocab = [:]
        vocab.reserveCapacity(v.count)
        for (k, id) in v {
            guard let i = jsonInt(id) else { throw ctx.bad("model BPE", "vocab id of \(k) is not an integer") }
            vocab[TokenKey(k)] = i
        }
        self.vocab = vocab
        prefix = json["continuing_subword_prefix"] as? String ?? ""
        suffix = json["end_of_word_suffix"] as? String ?? ""
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        let list = json["merges"] as? [Any] ?? []
        merges.reserveCapacity(list.count)
        for (rank, m) in list.enumerated() {
            let a: String, b: String
            if let s = m as? String {
                // "a b": split on the first space (tokens themselves hold no plain space in byte-level files)
                guard let sp = s.firstIndex(of: " ") else { throw ctx.bad("model BPE", "merge \"\(s)\" is not \"a b\"") }
                a = String(s[..<sp]); b = String(s[s.index(after: sp)...])
            } else if let p = m as? [Any], p.count == 2, let x = p[0] as? String, let y = p[1] as? String {
                a = x; b = y
            } else {
                throw ctx.bad("model BPE", "merge \(m) is neither \"a b\" nor [a, b]")
            }
            guard let ia = vocab[TokenKey(a)], let ib = vocab[TokenKey(b)] else {
                throw ctx.bad("model BPE", "merge \(a) \(b) uses a token missing from the vocab")
            }
            let merged = a + (prefix.isEmpty || !b.hasPrefix(prefix) ? b : String(b.dropFirst(prefix.count)))
            guard let im = vocab[TokenKey(merged)] else {
                throw ctx.bad("model BPE", "merge \(a) \(b) makes \(merged), missing from the vocab")
            }
            let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
            if merges[key] == nil { merges[key] = (Int32(rank), Int32(im)) }
        }
        self.merges = merges
        if let unk = json["unk_token"] as? String { unkID = vocab[TokenKey(unk)] } else { unkID = nil }
        fuseUnk = json["fuse_unk"] as? Bool ?? false
        byteFallback = json["byte_fallback"] as? Bool ?? false
        ignoreMerges = json["ignore_merges"] as? Bool ?? false
    }

    func tokenize(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocab[TokenKey(word)] { return [id] }
        lock.lock()
        if let hit = cache[TokenKey(word)] { lock.unlock(); return hit }
        lock.unlock()
        let ids = merge(word)
        lock.lock()
        if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
        cache[TokenKey(word)] = ids
        lock.unlock()
        return ids
    }

    private func merge(_ word: String) -> [Int] {
        let chars = Array(word.unicodeScalars)
        var symbols: [Int] = []
        symbols.reserveCapacity(chars.count)
        var lastWasUnk = false
        for (i, c) in chars.enumerated() {
            var s = String(c)
            if i > 0 { s = prefix + s }
            if i == chars.count - 1 { s += suffix }
            if let id = vocab[TokenKey(s)] {
                symbols.append(id); lastWasUnk = false
                continue
            }
            if byteFallback {
                let bytes = Array(String(c).utf8).map { vocab[TokenKey(String(format: "<0x%02X>", $0))] }
                if bytes.allSatisfy({ $0 != nil }) {
                    symbols.append(contentsOf: bytes.map { $0! }); lastWasUnk = false
                    continue
                }
            }
            if let unk = unkID {
                if !(fuseUnk && lastWasUnk) { symbols.append(unk) }
                lastWasUnk = true
            }
        }
        // Byte-fallback and unk symbols never merge: HF keeps them out of merges too, since
        // no merge names them (their ids are not produced by the characters' concatenation).
        while symbols.count > 1 {
            var best: Int32 = .max
            var at = -1
            var newID: Int32 = 0
            for j in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[j])) << 32 | UInt64(UInt32(symbols[j + 1]))
                if let m = merges[key], m.rank < best { best = m.rank; at = j; newID = m.id }
            }
            if at < 0 { break }
            symbols[at] = Int(newID)
            symbols.remove(at: at + 1)
        }
        return symbols
    }
}
