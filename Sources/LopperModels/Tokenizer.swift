import Foundation
import LopperIO

/// A tokenizer read from a Hugging Face `tokenizer.json`.
///
/// Supported (what BERT-family and Llama 3 / Qwen2 / GPT-2 files use):
/// * normalizers: `BertNormalizer`, `NFC`, `NFD`, `NFKC`, `NFKD`, `Lowercase`, `StripAccents`,
///   `Strip`, `Replace` (string pattern), `Prepend`, `Sequence`;
/// * pre-tokenizers: `BertPreTokenizer`, `Whitespace`, `WhitespaceSplit`, `Split` (regex or string),
///   `ByteLevel` (with or without its GPT-2 regex), `Digits`, `Sequence`;
/// * models: `WordPiece`, `BPE` (byte-level or not, `ignore_merges`, `byte_fallback`);
/// * post-processors: `TemplateProcessing`, `BertProcessing`, `RobertaProcessing`, `ByteLevel`, `Sequence`;
/// * decoders: `WordPiece`, `ByteLevel`, `Sequence` of those and `Replace`/`ByteFallback`/`Fuse`/`Strip`.
/// `added_tokens` are matched first (leftmost-longest, `lstrip`/`rstrip`/`single_word`/`normalized`), as HF does.
/// Anything else throws `TokenizerError` naming the component and the file.
public final class Tokenizer: @unchecked Sendable {  // immutable after init; the BPE cache is locked
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: TokenizerModel
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    let added: AddedTokens
    let padding: Int?
    private let idToTokenTable: [String?]
    private let specialIDs: Set<Int>

    /// `path` is a `tokenizer.json` file or a folder holding one.
    public init(path: String) throws {
        var file = path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            file = (path as NSString).appendingPathComponent("tokenizer.json")
        }
        guard FileManager.default.fileExists(atPath: file) else { throw TokenizerError("\(file): no such tokenizer file") }
        let data: Data
        do { data = try readFile(file) } catch { throw TokenizerError("\(error)") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError("\(file): not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else {
            throw TokenizerError("\(file): expected a JSON object at the top level")
        }
        let ctx = ParseContext(file: (file as NSString).lastPathComponent)
        guard let modelJSON = root["model"] as? [String: Any] else {
            throw TokenizerError("\(ctx.file): no model section")
        }
        model = try parseModel(modelJSON, ctx)
        normalizer = try Normalizer.parse(root["normalizer"], ctx)
        preTokenizer = try PreTokenizer.parse(root["pre_tokenizer"], ctx)
        postProcessor = try PostProcessor.parse(root["post_processor"], ctx)
        decoder = try Decoder.parse(root["decoder"], ctx)
        added = try AddedTokens(root["added_tokens"], normalizer: normalizer, ctx)

        // id -> token over the model vocabulary and the added tokens
        var maxID = -1
        for (_, id) in model.vocab { maxID = max(maxID, id) }
        for t in added.tokens { maxID = max(maxID, t.id) }
        var table = [String?](repeating: nil, count: maxID + 1)
        for (tok, id) in model.vocab { table[id] = tok.string }
        for t in added.tokens { table[t.id] = t.content }
        idToTokenTable = table
        specialIDs = Set(added.tokens.filter { $0.special }.map { $0.id })

        var pad: Int? = nil
        if let p = root["padding"] as? [String: Any] {
            if let id = p["pad_id"] as? Int { pad = id }
            if let tok = p["pad_token"] as? String, let id = added.byContent[TokenKey(tok)] ?? model.vocab[TokenKey(tok)] { pad = id }
        }
        if pad == nil {
            for name in ["[PAD]", "<pad>", "<|pad|>", "<|padding|>", "<|finetune_right_pad_id|>", "<|PAD_TOKEN|>"] {
                if let id = added.byContent[TokenKey(name)] ?? model.vocab[TokenKey(name)] { pad = id; break }
            }
        }
        padding = pad
    }

    /// Token ids of `text`. With `addSpecialTokens` the post-processor's tokens are added;
    /// `maxLength` truncates like HF (the special tokens are kept, the text is cut on the right;
    /// a `maxLength` smaller than the number of special tokens truncates nothing, as in HF).
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int] {
        var ids: [Int] = []
        for segment in added.split(text, normalizer: normalizer) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece):
                let words = preTokenizer?.apply([piece]) ?? [piece]
                for w in words where !w.isEmpty {
                    ids.append(contentsOf: model.tokenize(w))
                }
            }
        }
        let specials = addSpecialTokens ? (postProcessor?.addedCount ?? 0) : 0
        // Like HF: a maxLength below the number of special tokens leaves the text untruncated.
        if let maxLength, maxLength >= specials {
            let keep = maxLength - specials
            if ids.count > keep { ids.removeLast(ids.count - keep) }
        }
        if addSpecialTokens, let postProcessor {
            ids = postProcessor.apply(ids)
        }
        return ids
    }

    /// Best-effort text of `ids`, skipping special tokens.
    public func decode(_ ids: [Int]) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < idToTokenTable.count && !specialIDs.contains(id) {
            if let t = idToTokenTable[id] { tokens.append(t) }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens)
    }

    /// Number of distinct tokens, added tokens included (HF's `get_vocab_size(with_added_tokens=True)`).
    public var vocabularySize: Int {
        var n = model.vocab.count
        for t in added.tokens where model.vocab[TokenKey(t.content)] == nil { n += 1 }
        return n
    }

    public func id(of token: String) -> Int? {
        added.byContent[TokenKey(token)] ?? model.vocab[TokenKey(token)]
    }

    /// The token at `id`, if any.
    public func token(of id: Int) -> String? {
        id >= 0 && id < idToTokenTable.count ? idToTokenTable[id] : nil
    }

    /// The padding id from the `padding` section, else a common pad token's id.
    public var padID: Int? { padding }
}

public struct TokenizerError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

struct ParseContext {
    let file: String

    func unsupported(_ section: String, _ type: String, supported: [String]) -> TokenizerError {
        TokenizerError("\(file): \(section) type \(type) is not supported (supported: \(supported.joined(separator: ", ")))")
    }

    func bad(_ section: String, _ what: String) -> TokenizerError {
        TokenizerError("\(file): \(section): \(what)")
    }
}

protocol TokenizerModel: AnyObject {
    var vocab: Vocab { get }
    func tokenize(_ word: String) -> [Int]
}

let supportedModels = ["WordPiece", "BPE"]

func parseModel(_ json: [String: Any], _ ctx: ParseContext) throws -> TokenizerModel {
    let type = json["type"] as? String ?? (json["merges"] != nil ? "BPE" : "")
    switch type {
    case "WordPiece": return try WordPieceModel(json, ctx)
    case "BPE": return try BPEModel(json, ctx)
    default: throw ctx.unsupported("model", type.isEmpty ? "(missing)" : type, supported: supportedModels)
    }
}

/// Reads a JSON number as Int (JSONSerialization gives NSNumber / Int / Double).
/// A JSON number that is a whole number from 0 to 2^31 - 1 (token ids, counts); nil for
/// anything else (negative, fractional, huge), so no conversion can trap.
func jsonInt(_ v: Any?) -> Int? {
    if let i = v as? Int { return (0...Int(Int32.max)).contains(i) ? i : nil }
    if let d = v as? Double, d.isFinite, d == d.rounded(), d >= 0, d <= Double(Int32.max) { return Int(d) }
    return nil
}

/// A token string compared and hashed by its UTF-8 bytes, as HF does. (Swift's `String`
/// equality is canonical equivalence: "é" == "e\u{301}", which would merge distinct tokens.)
struct TokenKey: Hashable {
    let string: String
    init(_ s: String) { string = s }

    static func == (a: TokenKey, b: TokenKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    func hash(into h: inout Hasher) {
        var s = string
        s.withUTF8 { h.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

typealias Vocab = [TokenKey: Int]
