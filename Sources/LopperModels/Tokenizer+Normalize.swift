import Foundation

/// A `normalizer` section. Works on Unicode scalars (Rust `char`s), like HF.
indirect enum Normalizer {
    case bert(cleanText: Bool, chineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case nfc, nfd, nfkc, nfkd, lowercase, stripAccents
    case strip(left: Bool, right: Bool)
    case replace(String, String)
    case prepend(String)
    case sequence([Normalizer])

    static let supported = ["BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents",
                            "Strip", "Replace", "Prepend", "Sequence"]

    static func parse(_ any: Any?, _ ctx: ParseContext) throws -> Normalizer? {
        guard let json = any as? [String: Any] else { return nil }  // null
        let type = json["type"] as? String ?? "(missing)"
        switch type {
        case "BertNormalizer":
            let lower = json["lowercase"] as? Bool ?? true
            return .bert(cleanText: json["clean_text"] as? Bool ?? true,
                         chineseChars: json["handle_chinese_chars"] as? Bool ?? true,
                         stripAccents: json["strip_accents"] as? Bool ?? lower, lowercase: lower)
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Strip": return .strip(left: json["strip_left"] as? Bool ?? true, right: json["strip_right"] as? Bool ?? true)
        case "Prepend": return .prepend(json["prepend"] as? String ?? "")
        case "Replace":
            guard let pattern = json["pattern"] as? [String: Any], let s = pattern["String"] as? String else {
                throw ctx.bad("normalizer Replace", "only string patterns are supported")
            }
            return .replace(s, json["content"] as? String ?? "")
        case "Sequence":
            let items = json["normalizers"] as? [Any] ?? []
            return .sequence(try items.compactMap { try parse($0, ctx) })
        default:
            throw ctx.unsupported("normalizer", type, supported: supported)
        }
    }

    func apply(_ s: String) -> String {
        switch self {
        case let .bert(clean, chinese, strip, lower):
            var out = String.UnicodeScalarView()
            for c in s.unicodeScalars {
                if clean {
                    if c.value == 0 || c.value == 0xFFFD || isControl(c) { continue }
                    if isWhitespace(c) { out.append(" "); continue }
                }
                if chinese && isChineseChar(c) {
                    out.append(" "); out.append(c); out.append(" ")
                } else {
                    out.append(c)
                }
            }
            var r = String(out)
            if strip { r = stripMarks(r) }
            if lower { r = lowercased(r) }
            return r
        case .nfc: return s.precomposedStringWithCanonicalMapping
        case .nfd: return s.decomposedStringWithCanonicalMapping
        case .nfkc: return s.precomposedStringWithCompatibilityMapping
        case .nfkd: return s.decomposedStringWithCompatibilityMapping
        case .lowercase: return lowercased(s)
        case .stripAccents: return stripMarks(s, decompose: false)
        case let .strip(left, right):
            var scalars = Array(s.unicodeScalars)
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            if left { let n = scalars.prefix { $0.properties.isWhitespace }.count; scalars.removeFirst(n) }
            var v = String.UnicodeScalarView(); v.append(contentsOf: scalars); return String(v)
        case let .replace(pattern, content):
            return pattern.isEmpty ? s : s.replacingOccurrences(of: pattern, with: content, options: .literal)
        case let .prepend(p):
            return s.isEmpty ? s : p + s
        case let .sequence(items):
            return items.reduce(s) { $1.apply($0) }
        }
    }
}

/// Per-scalar full lowercase mapping (Rust `char::to_lowercase`: no final-sigma context).
func lowercased(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    for c in s.unicodeScalars {
        if c.isASCII {
            out.append(c.value >= 65 && c.value <= 90 ? Unicode.Scalar(c.value + 32)! : c)
        } else {
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
        }
    }
    return String(out)
}

/// NFD, then drop nonspacing marks (Mn), like HF's strip_accents.
func stripMarks(_ s: String, decompose: Bool = true) -> String {
    let d = decompose ? s.decomposedStringWithCanonicalMapping : s
    var out = String.UnicodeScalarView()
    for c in d.unicodeScalars where c.properties.generalCategory != .nonspacingMark { out.append(c) }
    return String(out)
}

/// HF's `is_whitespace` (\t \n \r and Unicode White_Space).
@inline(__always) func isWhitespace(_ c: Unicode.Scalar) -> Bool {
    c == " " || c == "\t" || c == "\n" || c == "\r" || (c.value > 127 && c.properties.isWhitespace)
}

/// HF's `is_control`: categories Cc, Cf, Co (Cn is kept), except \t \n \r.
func isControl(_ c: Unicode.Scalar) -> Bool {
    if c == "\t" || c == "\n" || c == "\r" { return false }
    if c.isASCII { return c.value < 32 || c.value == 127 }
    switch c.properties.generalCategory {
    case .control, .format, .privateUse, .surrogate: return true
    default: return false
    }
}

/// HF's BERT punctuation: ASCII punctuation (symbols included) or a Unicode P* category.
func isPunctuation(_ c: Unicode.Scalar) -> Bool {
    let v = c.value
    if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
    if c.isASCII { return false }
    switch c.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
         .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
    default: return false
    }
}

func isChineseChar(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
         0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
    default: return false
    }
}
