import Foundation

struct AddedToken {
    let id: Int
    let content: String
    let special: Bool
    let lstrip: Bool
    let rstrip: Bool
    let singleWord: Bool
    let normalized: Bool
}

enum Segment {
    case token(Int)
    case text(String)
}

/// `added_tokens`: matched in the text before the model sees it, like HF's AddedVocabulary.
/// Tokens with `normalized: false` are found in the raw text; the rest of the text is then
/// normalized and tokens with `normalized: true` are found in the normalized text.
final class AddedTokens {
    let tokens: [AddedToken]
    let byContent: Vocab
    private let raw: Matcher
    private let normalizedMatcher: Matcher

    init(_ any: Any?, normalizer: Normalizer?, _ ctx: ParseContext) throws {
        var tokens: [AddedToken] = []
        for item in any as? [Any] ?? [] {
            guard let t = item as? [String: Any], let content = t["content"] as? String else {
                throw ctx.bad("added_tokens", "each entry needs an integer id and a content string")
            }
            guard let id = jsonInt(t["id"]) else {
                throw ctx.bad("added_tokens", "token \"\(content)\" has id \(t["id"].map { "\($0)" } ?? "(none)"), not a token id (an integer from 0)")
            }
            let special = t["special"] as? Bool ?? false
            tokens.append(AddedToken(id: id, content: content, special: special,
                                     lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false,
                                     singleWord: t["single_word"] as? Bool ?? false,
                                     normalized: t["normalized"] as? Bool ?? !special))
        }
        self.tokens = tokens
        var by: Vocab = [:]
        for t in tokens { by[TokenKey(t.content)] = t.id }
        byContent = by
        raw = Matcher(tokens.filter { !$0.normalized }.map { ($0, $0.content) })
        normalizedMatcher = Matcher(tokens.filter { $0.normalized }.map { ($0, normalizer?.apply($0.content) ?? $0.content) })
    }

    func split(_ text: String, normalizer: Normalizer?) -> [Segment] {
        var out: [Segment] = []
        for seg in raw.split(text) {
            switch seg {
            case .token: out.append(seg)
            case .text(let piece):
                let n = normalizer?.apply(piece) ?? piece
                for s in normalizedMatcher.split(n) {
                    if case .text(let t) = s, t.isEmpty { continue }
                    out.append(s)
                }
            }
        }
        return out
    }
}

/// Leftmost-longest matching of a few token strings over Unicode scalars.
struct Matcher {
    private let patterns: [(token: AddedToken, scalars: [Unicode.Scalar])]
    private let byFirst: [Unicode.Scalar: [Int]]  // pattern indices, longest first

    init(_ items: [(AddedToken, String)]) {
        patterns = items.filter { !$0.1.isEmpty }.map { ($0.0, Array($0.1.unicodeScalars)) }
        var by: [Unicode.Scalar: [Int]] = [:]
        for (i, p) in patterns.enumerated() { by[p.scalars[0], default: []].append(i) }
        let pats = patterns
        byFirst = by.mapValues { $0.sorted { pats[$0].scalars.count > pats[$1].scalars.count } }
    }

    func split(_ text: String) -> [Segment] {
        if patterns.isEmpty { return [.text(text)] }
        let s = Array(text.unicodeScalars)
        var out: [Segment] = []
        var startOffset = 0
        var i = 0
        func piece(_ a: Int, _ b: Int) -> String {
            var v = String.UnicodeScalarView(); v.append(contentsOf: s[a..<b]); return String(v)
        }
        while i < s.count {
            guard let cands = byFirst[s[i]] else { i += 1; continue }
            var hit: Int? = nil
            for c in cands {
                let p = patterns[c].scalars
                if i + p.count <= s.count && s[i..<(i + p.count)].elementsEqual(p) { hit = c; break }
            }
            guard let h = hit else { i += 1; continue }
            let tok = patterns[h].token
            var start = i
            var stop = i + patterns[h].scalars.count
            if tok.singleWord {
                let before = start > 0 && isWordChar(s[start - 1])
                let after = stop < s.count && isWordChar(s[stop])
                if before || after { i = stop; continue }
            }
            if tok.lstrip {
                while start > startOffset && s[start - 1].properties.isWhitespace { start -= 1 }
            }
            if tok.rstrip {
                while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
            }
            if startOffset < start { out.append(.text(piece(startOffset, start))) }
            out.append(.token(tok.id))
            startOffset = stop
            i = stop
        }
        if startOffset < s.count { out.append(.text(piece(startOffset, s.count))) }
        return out
    }
}

/// `\w` of Rust's regex crate, which HF's `single_word` check uses: Alphabetic, marks,
/// decimal digits, connector punctuation, Join_Control.
func isWordChar(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c == "_" || (c.value >= 48 && c.value <= 57) || ((c.value | 32) >= 97 && (c.value | 32) <= 122) }
    let p = c.properties
    if p.isAlphabetic || p.isJoinControl { return true }
    switch p.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
    default: return false
    }
}
