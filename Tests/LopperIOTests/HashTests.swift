import Foundation
import XCTest
import LopperIO

/// SHA-256 against the FIPS 180-4 / NIST example digests, and zlib streams that
/// round-trip and refuse what is not one.
final class HashTests: XCTestCase {
    func testSHA256MatchesTheNISTExamples() throws {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Fed in pieces that straddle blocks, the digest is the same.
        var hash = SHA256()
        for piece in ["abcdbcdecdefdefgefghfghighijhij", "kijkljklmklmnlmnomnopnopq"] { hash.update(Data(piece.utf8)) }
        XCTAssertEqual(hash.finish().map { String(format: "%02x", $0) }.joined(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testZlibStreamsRoundTripAndRefuseOthers() throws {
        let text = Data(String(repeating: "return { name = \"dare\" }\n", count: 50).utf8)
        let packed = try Deflate.compress(text)
        XCTAssertLessThan(packed.count, text.count / 4)
        XCTAssertEqual(packed.prefix(1), Data([0x78]))   // a zlib header, as Python's zlib writes
        XCTAssertEqual(try Deflate.decompress(packed, expectedSize: text.count), text)
        XCTAssertThrowsError(try Deflate.decompress(packed, expectedSize: text.count - 1))
        XCTAssertThrowsError(try Deflate.decompress(Data("not zlib".utf8), expectedSize: 10))
    }
}
