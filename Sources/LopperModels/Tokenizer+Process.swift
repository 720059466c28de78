import Foundation

/// A `post_processor` for single sequences: ids before and after the text's ids.
struct PostProcessor {
    var prefix: [Int] = []
    var suffix: [Int] = []
    var addedCount: Int { prefix.count + suffix.count }

    func apply(_ ids: [Int]) -> [Int] { prefix + ids + suffix }

    static let supported = ["TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"]

    static func parse(_ any: Any?, _ ctx: ParseContext) throws -> PostProcessor? {
        guard let json = any as? [String: Any] else { return nil }
        let type = json["type"] as? String ?? "(missing)"
        switch type {
        case "ByteLevel": return PostProcessor()
        case "BertProcessing", "RobertaProcessing":
            guard let cls = json["cls"] as? [Any], cls.count == 2, let clsID = jsonInt(cls[1]),
                  let sep = json["sep"] as? [Any], sep.count == 2, let sepID = jsonInt(sep[1]) else {
                throw ctx.bad("post_processor \(type)", "cls and sep must be [token, id] pairs")
            }
            return PostProcessor(prefix: [clsID], suffix: [sepID])
        case "TemplateProcessing":
            let specials = json["special_tokens"] as? [String: Any] ?? [:]
            var p = PostProcessor()
            var seenSequence = false
            for item in json["single"] as? [Any] ?? [] {
                guard let piece = item as? [String: Any] else { continue }
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let st = piece["SpecialToken"] as? [String: Any], let name = st["id"] as? String,
                      let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Any] else {
                    throw ctx.bad("post_processor TemplateProcessing", "bad single template entry \(item)")
                }
                let idList = ids.compactMap(jsonInt)
                if seenSequence { p.suffix += idList } else { p.prefix += idList }
            }
            return p
        case "Sequence":
            var p = PostProcessor()
            for item in json["processors"] as? [Any] ?? [] {
                if let q = try parse(item, ctx) {
                    p = PostProcessor(prefix: q.prefix + p.prefix, suffix: p.suffix + q.suffix)
                }
            }
            return p
        default:
            throw ctx.unsupported("post_processor", type, supported: supported)
        }
    }
}

/// A `decoder`: HF's decode chain (tokens to tokens), then joined.
indirect enum Decoder {
    case byteLevel
    case wordPiece(prefix: String, cleanup: Bool)
    case replace(String, String)
    case byteFallback
    case fuse
    case strip(String, start: Int, stop: Int)
    case sequence([Decoder])

    static let supported = ["ByteLevel", "WordPiece", "Replace", "ByteFallback", "Fuse", "Strip", "Sequence"]

    static func parse(_ any: Any?, _ ctx: ParseContext) throws -> Decoder? {
        guard let json = any as? [String: Any] else { return nil }
        let type = json["type"] as? String ?? "(missing)"
        switch type {
        case "ByteLevel": return .byteLevel
        case "WordPiece": return .wordPiece(prefix: json["prefix"] as? String ?? "##", cleanup: json["cleanup"] as? Bool ?? true)
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            return .strip(json["content"] as? String ?? " ", start: jsonInt(json["start"]) ?? 0, stop: jsonInt(json["stop"]) ?? 0)
        case "Replace":
            guard let pattern = json["pattern"] as? [String: Any], let s = pattern["String"] as? String else {
                throw ctx.bad("decoder Replace", "only string patterns are supported")
            }
            return .replace(s, json["content"] as? String ?? "")
        case "Sequence":
            return .sequence(try (json["decoders"] as? [Any] ?? []).compactMap { try parse($0, ctx) })
        default:
            throw ctx.unsupported("decoder", type, supported: supported)
        }
    }

    func decode(_ tokens: [String]) -> String { chain(tokens).joined() }

    func chain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            return [byteLevelDecode(tokens.joined())]
        case let .wordPiece(prefix, cleanup):
            return tokens.enumerated().map { i, t in
                var tok = t
                if i != 0 {
                    if !prefix.isEmpty && tok.hasPrefix(prefix) { tok.removeFirst(prefix.count) } else { tok = " " + tok }
                }
                return cleanup ? wordPieceCleanup(tok) : tok
            }
        case let .replace(a, b):
            return tokens.map { $0.replacingOccurrences(of: a, with: b, options: .literal) }
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { t in
                var s = Array(t)
                var n = 0
                while n < start, let f = s.first, String(f) == content { s.removeFirst(); n += 1 }
                n = 0
                while n < stop, let l = s.last, String(l) == content { s.removeLast(); n += 1 }
                return String(s)
            }
        case .byteFallback:
            var out: [String] = []
            var bytes: [UInt8] = []
            func flush() {
                if !bytes.isEmpty {
                    if let s = String(validating: bytes, as: UTF8.self) { out.append(s) } else {
                        out.append(contentsOf: Array(repeating: "\u{FFFD}", count: bytes.count))
                    }
                    bytes = []
                }
            }
            for t in tokens {
                if t.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">"), let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
                    bytes.append(b)
                } else {
                    flush(); out.append(t)
                }
            }
            flush()
            return out
        case .sequence(let items):
            return items.reduce(tokens) { $1.chain($0) }
        }
    }
}

func wordPieceCleanup(_ s: String) -> String {
    var r = s
    for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                   (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
        r = r.replacingOccurrences(of: a, with: b, options: .literal)
    }
    return r
}
