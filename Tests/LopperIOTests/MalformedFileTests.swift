import Foundation
import XCTest
import LopperCore
import LopperIO

/// Every malformed file gets one line naming the file and the fault; nothing crashes.
final class MalformedFileTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lopper-bad-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A file with `header` as its JSON and `data` bytes after it.
    func file(header: String, data: Int, lengthDelta: Int = 0, name: String = "bad.safetensors") throws -> String {
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count + lengthDelta).littleEndian, Array.init)
        bytes += Array(header.utf8) + Array(repeating: 0, count: data)
        let path = folder + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func fault(_ path: String) -> String {
        do { _ = try SafetensorsFile(path: path); return "no error" } catch { return "\(error)" }
    }

    func testEachFaultHasItsMessage() throws {
        let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertEqual(fault(try file(header: good, data: 8)), "no error")
        let cases: [(String, Int, Int, String)] = [
            (good, 7, 0, "tensor data runs past the end of the file"),
            (good, 12, 0, "4 trailing bytes after the last tensor"),
            (good, 8, 1000, "header length 1054 runs past the end of the file (70 bytes)"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, 8, 0, "header is not valid JSON"),
            (#"{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, 8, 0, "unknown dtype \"F33\""),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12, 0, "overlaps the previous tensor"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#, 20, 0, "gap in data before tensor \"b\""),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, 0, "hold 8 bytes but shape [3] x F32 needs 12"),
            (#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, 8, 0, "overflows"),
            (#"{"a":{"dtype":"F32","shape":[1000000000,1000000],"data_offsets":[0,8]}}"#, 8, 0, "needs 4000000000000000"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, 16, 0, "duplicate key \"a\""),
            (#"{"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8, 0, "__metadata__ value of \"n\" is not a string"),
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, 8, 0, "is not a list of non-negative integers"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8, 0, "data_offsets must be [begin, end]"),
            (#"[1,2]"#, 0, 0, "header is not a JSON object"),
        ]
        for (header, data, delta, expected) in cases {
            let message = fault(try file(header: header, data: data, lengthDelta: delta))
            XCTAssertTrue(message.hasPrefix(folder + "/bad.safetensors: "), message)
            XCTAssertTrue(message.contains(expected), "expected \(expected) in: \(message)")
            XCTAssertFalse(message.contains("\n"), "one line: \(message)")
        }
    }

    func testTruncatedAndHugeHeaderLength() throws {
        let path = folder + "/short.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertTrue(fault(path).contains("too short for the 8-byte header length"))
        var bytes = withUnsafeBytes(of: UInt64.max.littleEndian, Array.init)
        bytes += Array("{}".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertTrue(fault(path).contains("exceeds the limit"))
        XCTAssertTrue(fault(folder + "/missing.safetensors").contains("cannot open"))
    }

    /// Random mutations of valid files: reading throws or succeeds, never crashes.
    func testFuzzedFilesNeverCrash() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: SafetensorsReadTests.fixtures + "/all_dtypes.safetensors"))
        var generator = SplitMix(state: 0x5EED)
        let path = folder + "/fuzz.safetensors"
        var accepted = 0
        for round in 0..<1500 {
            var bytes = [UInt8](source)
            switch round % 4 {
            case 0:
                for _ in 0..<(1 + generator.next() % 4) { bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next()) }
            case 1:
                bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count))))
            case 2:
                // Mutate only the header, where the structure lives.
                let headerEnd = min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8)
                let position = 8 + Int(generator.next() % UInt64(headerEnd - 8))
                bytes[position] = Array("{}[]\",:0123456789-e. ".utf8)[Int(generator.next() % 21)]
            default:
                let a = Int(generator.next() % UInt64(bytes.count)), b = Int(generator.next() % UInt64(bytes.count))
                bytes.insert(contentsOf: bytes[min(a, b)..<max(a, b)].prefix(64), at: a)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            if let file = try? SafetensorsFile(path: path) {
                accepted += 1
                for name in file.names { _ = try? file.tensor(name).floats() }
            }
        }
        XCTAssertLessThan(accepted, 1500, "some mutations must be refused")
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
