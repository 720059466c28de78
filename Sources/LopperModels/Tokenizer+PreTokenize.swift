import Foundation

/// The GPT-2 pattern HF's `ByteLevel` pre-tokenizer uses when `use_regex` is true.
let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious",
         mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// A `pre_tokenizer` section: turns one text piece into words for the model.
indirect enum PreTokenizer {
    case bert
    case whitespace          // \w+|[^\w\s]+
    case whitespaceSplit
    case split(NSRegularExpression, SplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, regex: NSRegularExpression?)
    case digits(individual: Bool)
    case sequence([PreTokenizer])

    static let supported = ["BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Split", "ByteLevel",
                            "Digits", "Sequence"]

    static func parse(_ any: Any?, _ ctx: ParseContext) throws -> PreTokenizer? {
        guard let json = any as? [String: Any] else { return nil }
        let type = json["type"] as? String ?? "(missing)"
        switch type {
        case "BertPreTokenizer": return .bert
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "Digits": return .digits(individual: json["individual_digits"] as? Bool ?? false)
        case "ByteLevel":
            let useRegex = json["use_regex"] as? Bool ?? true
            return .byteLevel(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true,
                              regex: useRegex ? try compile(gpt2Pattern, ctx) : nil)
        case "Split":
            let pattern = json["pattern"] as? [String: Any] ?? [:]
            let regex: NSRegularExpression
            if let r = pattern["Regex"] as? String {
                regex = try compile(r, ctx)
            } else if let s = pattern["String"] as? String {
                regex = try compile(NSRegularExpression.escapedPattern(for: s), ctx)
            } else {
                throw ctx.bad("pre_tokenizer Split", "pattern must be {\"Regex\": ...} or {\"String\": ...}")
            }
            let b = json["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: b) else {
                throw ctx.bad("pre_tokenizer Split", "behavior \(b) is not supported")
            }
            return .split(regex, behavior, invert: json["invert"] as? Bool ?? false)
        case "Sequence":
            let items = json["pretokenizers"] as? [Any] ?? []
            return .sequence(try items.compactMap { try parse($0, ctx) })
        default:
            throw ctx.unsupported("pre_tokenizer", type, supported: supported)
        }
    }

    static func compile(_ pattern: String, _ ctx: ParseContext) throws -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern, options: [])
        } catch {
            throw ctx.bad("pre_tokenizer", "regex \(pattern) does not compile (\(error))")
        }
    }

    func apply(_ pieces: [String]) -> [String] {
        switch self {
        case .sequence(let items):
            return items.reduce(pieces) { $1.apply($0) }
        case .bert:
            return pieces.flatMap { splitScalars($0, isWhitespace, .removed) }
                .flatMap { splitScalars($0, isPunctuation, .isolated) }
        case .whitespaceSplit:
            return pieces.flatMap { splitScalars($0, isWhitespace, .removed) }
        case .whitespace:
            return pieces.flatMap { splitWhitespaceRule($0) }
        case .digits(let individual):
            let isDigit: (Unicode.Scalar) -> Bool = {  // Rust char::is_numeric: categories Nd, Nl, No
                switch $0.properties.generalCategory {
                case .decimalNumber, .letterNumber, .otherNumber: return true
                default: return false
                }
            }
            return pieces.flatMap { splitScalars($0, isDigit, individual ? .isolated : .contiguous) }
        case let .split(regex, behavior, invert):
            return pieces.flatMap { regexSplit($0, regex, behavior, invert: invert) }
        case let .byteLevel(addPrefixSpace, regex):
            var out: [String] = []
            for p in pieces {
                var s = p
                if addPrefixSpace && !s.hasPrefix(" ") { s = " " + s }
                let words = regex.map { regexSplit(s, $0, .isolated, invert: false) } ?? [s]
                for w in words where !w.isEmpty { out.append(byteLevelEncode(w)) }
            }
            return out
        }
    }
}

/// Splits on scalars for which `isDelimiter` holds, with HF's split behaviours.
func splitScalars(_ s: String, _ isDelimiter: (Unicode.Scalar) -> Bool, _ behavior: SplitBehavior) -> [String] {
    var spans: [(String.UnicodeScalarView.SubSequence, Bool)] = []  // (text, is delimiter)
    let v = s.unicodeScalars
    var start = v.startIndex
    var i = v.startIndex
    var inDelims = false
    while i < v.endIndex {
        let d = isDelimiter(v[i])
        if d {
            if behavior == .contiguous {
                if !inDelims {
                    if start < i { spans.append((v[start..<i], false)) }
                    start = i
                }
                inDelims = true
            } else {
                if start < i { spans.append((v[start..<i], false)) }
                let next = v.index(after: i)
                spans.append((v[i..<next], true))
                start = next
            }
        } else if inDelims {
            spans.append((v[start..<i], true))
            start = i
            inDelims = false
        }
        i = v.index(after: i)
    }
    if start < v.endIndex { spans.append((v[start..<v.endIndex], inDelims)) }
    return combine(spans.map { (String($0.0), $0.1) }, behavior)
}

/// Applies a split behaviour to (text, matched) spans covering a string.
func combine(_ spans: [(String, Bool)], _ behavior: SplitBehavior) -> [String] {
    switch behavior {
    case .removed:
        return spans.filter { !$0.1 }.map { $0.0 }
    case .isolated:
        return spans.map { $0.0 }
    case .contiguous:
        var out: [String] = []
        var last: Bool? = nil
        for (t, m) in spans {
            if m, last == true { out[out.count - 1] += t } else { out.append(t) }
            last = m
        }
        return out
    case .mergedWithPrevious:
        var out: [String] = []
        var prevWasText = false
        for (t, m) in spans {
            if m, prevWasText { out[out.count - 1] += t } else { out.append(t) }
            prevWasText = !m
        }
        return out
    case .mergedWithNext:
        var out: [String] = []
        var pending = ""
        for (t, m) in spans {  // a match joins the next span only when that is not a match
            if m {
                if !pending.isEmpty { out.append(pending) }
                pending = t
            } else {
                out.append(pending + t); pending = ""
            }
        }
        if !pending.isEmpty { out.append(pending) }
        return out
    }
}

func regexSplit(_ s: String, _ regex: NSRegularExpression, _ behavior: SplitBehavior, invert: Bool) -> [String] {
    if s.isEmpty { return [] }
    let ns = s as NSString
    var spans: [(String, Bool)] = []
    var last = 0
    for m in regex.matches(in: s, options: [], range: NSRange(location: 0, length: ns.length)) {
        let r = m.range
        if r.length == 0 { continue }
        if r.location > last { spans.append((ns.substring(with: NSRange(location: last, length: r.location - last)), invert)) }
        spans.append((ns.substring(with: r), !invert))
        last = r.location + r.length
    }
    if last < ns.length { spans.append((ns.substring(from: last), invert)) }
    return combine(spans, behavior)
}

/// HF's `Whitespace` pre-tokenizer: `\w+|[^\w\s]+`.
func splitWhitespaceRule(_ s: String) -> [String] {
    var out: [String] = []
    var cur = String.UnicodeScalarView()
    var curKind = 0  // 0 none, 1 word, 2 other
    func flush() { if !cur.isEmpty { out.append(String(cur)); cur = String.UnicodeScalarView() } }
    for c in s.unicodeScalars {
        let kind: Int
        if isWordChar(c) {
            kind = 1
        } else if isWhitespace(c) {
            kind = 0
        } else {
            kind = 2
        }
        if kind != curKind { flush() }
        curKind = kind
        if kind != 0 { cur.append(c) }
    }
    flush()
    return out
}

// MARK: - Byte-level mapping (GPT-2 bytes_to_unicode)

let byteToScalar: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var n: UInt32 = 0
    for b in 0..<256 {
        let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
        if printable {
            table[b] = Unicode.Scalar(UInt32(b))!
        } else {
            table[b] = Unicode.Scalar(256 + n)!
            n += 1
        }
    }
    return table
}()

let scalarToByte: [UInt32: UInt8] = {
    var m: [UInt32: UInt8] = [:]
    for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
    return m
}()

func byteLevelEncode(_ s: String) -> String {
    var v = String.UnicodeScalarView()
    for b in s.utf8 { v.append(byteToScalar[Int(b)]) }
    return String(v)
}

/// Maps byte-level characters back to bytes and decodes UTF-8 (invalid sequences become U+FFFD).
func byteLevelDecode(_ s: String) -> String {
    var bytes: [UInt8] = []
    for c in s.unicodeScalars {
        if let b = scalarToByte[c.value] { bytes.append(b) } else { bytes.append(contentsOf: Array(String(c).utf8)) }
    }
    return String(decoding: bytes, as: UTF8.self)
}
