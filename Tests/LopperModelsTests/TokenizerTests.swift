import Foundation
import XCTest
import LopperModels

/// Compares Lopper's tokenizers with Hugging Face `tokenizers` on the fixtures written by
/// Scripts/make_model_fixtures.py (make_tokenizer_fixtures).
final class TokenizerTests: XCTestCase {
    struct Case {
        let text: String
        let ids: [Int], plain: [Int], max8: [Int], plainMax8: [Int]
        let decoded: String
    }

    static var fixtures: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("tokenizers")
    }

    func load(_ name: String) throws -> (Tokenizer, Int, [Case]) {
        let dir = Self.fixtures.appendingPathComponent(name)
        let tok = try Tokenizer(path: dir.path)
        let data = try Data(contentsOf: dir.appendingPathComponent("expected.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let ints: (Any?) -> [Int] = { ($0 as? [Any] ?? []).map { ($0 as! NSNumber).intValue } }
        // Foundation's JSON parser on Linux drops a leading U+FEFF: such strings also come as UTF-8 hex.
        func string(_ c: [String: Any], _ key: String) -> String {
            guard let hex = c[key + "_utf8_hex"] as? String else { return c[key] as! String }
            let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let a = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[a..<hex.index(a, offsetBy: 2)], radix: 16)!
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        let cases = (root["cases"] as? [[String: Any]] ?? []).map {
            Case(text: string($0, "text"), ids: ints($0["ids"]), plain: ints($0["ids_plain"]),
                 max8: ints($0["ids_max8"]), plainMax8: ints($0["ids_plain_max8"]), decoded: string($0, "decoded"))
        }
        XCTAssertGreaterThan(cases.count, 200, name)
        return (tok, (root["vocab_size"] as! NSNumber).intValue, cases)
    }

    /// Every string's ids, with and without special tokens and truncated to 8, exactly as HF;
    /// decode as HF's where `compareDecode`, and round trips where HF's decode round-trips.
    func check(_ name: String, compareDecode: Bool, minRoundTrips: Int) throws {
        let (tok, vocabSize, cases) = try load(name)
        XCTAssertEqual(tok.vocabularySize, vocabSize, "\(name) vocabularySize")
        var failures: [String] = []
        func expect(_ got: [Int], _ want: [Int], _ what: String, _ text: String) {
            if got != want { failures.append("\(what) of \(text.debugDescription):\n  got  \(got)\n  want \(want)") }
        }
        var roundTrips = 0
        for c in cases {
            let ids = tok.encode(c.text)
            expect(ids, c.ids, "ids", c.text)
            expect(tok.encode(c.text, addSpecialTokens: false), c.plain, "ids without special tokens", c.text)
            expect(tok.encode(c.text, maxLength: 8), c.max8, "ids with maxLength 8", c.text)
            expect(tok.encode(c.text, addSpecialTokens: false, maxLength: 8), c.plainMax8,
                   "ids without special tokens, maxLength 8", c.text)
            let decoded = tok.decode(c.ids)
            if compareDecode && decoded != c.decoded {
                failures.append("decode of \(c.text.debugDescription): got \(decoded.debugDescription), want \(c.decoded.debugDescription)")
            }
            if c.decoded == c.text {
                roundTrips += 1
                if decoded != c.text { failures.append("round trip of \(c.text.debugDescription): got \(decoded.debugDescription)") }
            }
        }
        if !failures.isEmpty {
            XCTFail("\(name): \(failures.count) mismatches; first ones:\n" + failures.prefix(8).joined(separator: "\n"))
        }
        XCTAssertGreaterThanOrEqual(roundTrips, minRoundTrips, "\(name): fewer strings round-trip than expected")
    }

    func testBertUncasedMatchesHF() throws { try check("bert_uncased", compareDecode: true, minRoundTrips: 20) }
    func testBertCasedMatchesHF() throws { try check("bert_cased", compareDecode: true, minRoundTrips: 50) }
    func testLlama3ByteLevelBPEMatchesHF() throws { try check("llama3_bpe", compareDecode: true, minRoundTrips: 250) }
    func testGPT2ByteLevelBPEMatchesHF() throws { try check("gpt2_bpe", compareDecode: true, minRoundTrips: 250) }
    func testOtherComponentsMatchHF() throws { try check("misc_wordpiece", compareDecode: true, minRoundTrips: 10) }
    func testRobertaByteLevelBPEMatchesHF() throws { try check("roberta_bpe", compareDecode: true, minRoundTrips: 0) }
    func testQwen2ByteLevelBPEMatchesHF() throws { try check("qwen2_bpe", compareDecode: true, minRoundTrips: 250) }

    func testAccessors() throws {
        let dir = Self.fixtures.appendingPathComponent("bert_uncased")
        let byFile = try Tokenizer(path: dir.appendingPathComponent("tokenizer.json").path)
        let byDir = try Tokenizer(path: dir.path)
        XCTAssertEqual(byFile.encode("hello world"), byDir.encode("hello world"))
        XCTAssertEqual(byFile.id(of: "[CLS]"), 2)
        XCTAssertEqual(byFile.id(of: "[PAD]"), 0)
        XCTAssertEqual(byFile.padID, 0)
        XCTAssertNil(byFile.id(of: "no such token here"))
        XCTAssertEqual(byFile.id(of: "lopper"), byFile.vocabularySize - 1)  // an added, non-special token

        let llama = try Tokenizer(path: Self.fixtures.appendingPathComponent("llama3_bpe").path)
        XCTAssertEqual(llama.id(of: "<|begin_of_text|>"), 0)
        XCTAssertNil(llama.padID)
        XCTAssertEqual(llama.encode("hi").first, 0)
        // Degenerate truncation, values from HF tokenizers 0.23: a maxLength below the number of
        // special tokens truncates nothing.
        XCTAssertEqual(llama.encode("hi there", maxLength: 1), [0])
        XCTAssertEqual(llama.encode("hi there", maxLength: 0), [0, 74, 75, 267, 310])
        XCTAssertEqual(llama.encode("hi there", addSpecialTokens: false, maxLength: 0), [])
        XCTAssertEqual(llama.encode("hi there", addSpecialTokens: false, maxLength: 1), [74])
        XCTAssertEqual(llama.decode(llama.encode("hi <mask> there <|eot_id|>")), "hithere ")  // <mask> strips spaces
    }

    /// Real Llama 3 files wrap the template in a Sequence after ByteLevel and write merges as "a b".
    func testLlama3FileShapes() throws {
        let dir = Self.fixtures.appendingPathComponent("llama3_bpe")
        let original = try Tokenizer(path: dir.path)
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        let template = root["post_processor"]!
        root["post_processor"] = ["type": "Sequence", "processors": [
            ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true], template]]
        var model = root["model"] as! [String: Any]
        model["merges"] = (model["merges"] as! [[String]]).map { $0.joined(separator: " ") }
        root["model"] = model
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-llama-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try JSONSerialization.data(withJSONObject: root).write(to: tmp)
        let variant = try Tokenizer(path: tmp.path)
        for text in ["Hello world!", "I'M SURE we'll see 12345 😀", "", "  spaces\n\nand lines <|eot_id|>x"] {
            XCTAssertEqual(variant.encode(text), original.encode(text), text)
            XCTAssertEqual(variant.encode(text, maxLength: 4), original.encode(text, maxLength: 4), text)
        }
        XCTAssertEqual(variant.encode("Hello").first, original.id(of: "<|begin_of_text|>"))
    }

    func errorMessage(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "(no error)"
    }

    func testErrorsNameTheFileAndComponent() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }

        let missing = errorMessage { _ = try Tokenizer(path: tmp.appendingPathComponent("nope.json").path) }
        XCTAssertTrue(missing.contains("nope.json") && missing.contains("no such"), missing)
        let emptyDir = errorMessage { _ = try Tokenizer(path: tmp.path) }
        XCTAssertTrue(emptyDir.contains("tokenizer.json"), emptyDir)

        let bad = tmp.appendingPathComponent("bad.json")
        try Data("{\"model\": [1, 2".utf8).write(to: bad)
        let badJSON = errorMessage { _ = try Tokenizer(path: bad.path) }
        XCTAssertTrue(badJSON.contains("bad.json") && badJSON.contains("not valid JSON"), badJSON)

        let source = Self.fixtures.appendingPathComponent("llama3_bpe/tokenizer.json")
        func variant(_ edit: (inout [String: Any]) -> Void) throws -> String {
            var root = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as! [String: Any]
            edit(&root)
            let file = tmp.appendingPathComponent("tokenizer.json")
            try JSONSerialization.data(withJSONObject: root).write(to: file)
            return errorMessage { _ = try Tokenizer(path: tmp.path) }
        }
        let meta = try variant { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }
        XCTAssertTrue(meta.contains("tokenizer.json: pre_tokenizer type Metaspace is not supported (supported: "), meta)
        let unigram = try variant { $0["model"] = ["type": "Unigram", "vocab": []] }
        XCTAssertTrue(unigram.contains("model type Unigram is not supported"), unigram)
        let norm = try variant { $0["normalizer"] = ["type": "Precompiled"] }
        XCTAssertTrue(norm.contains("normalizer type Precompiled is not supported"), norm)
        let post = try variant { $0["post_processor"] = ["type": "Fancy"] }
        XCTAssertTrue(post.contains("post_processor type Fancy is not supported"), post)
        let dec = try variant { $0["decoder"] = ["type": "CTC"] }
        XCTAssertTrue(dec.contains("decoder type CTC is not supported"), dec)
    }
}
