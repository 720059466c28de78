import Foundation
import XCTest
import LopperIO

/// `lopper inspect` as a user runs it.
final class InspectCommandTests: XCTestCase {
    func lopper(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let binary = Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("lopper")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw XCTSkip("lopper binary not built at \(binary.path)") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output, errors)
    }

    func testTableJSONAndErrors() throws {
        let fixtures = SafetensorsReadTests.fixtures
        let table = try lopper(["inspect", fixtures + "/sharded"])
        XCTAssertEqual(table.status, 0)
        XCTAssertTrue(table.out.contains("model.layers.1.mlp.up_proj.weight  BF16   [6,4]        48 B  model-00002-of-00002.safetensors"), table.out)
        XCTAssertTrue(table.out.contains("BF16: 4 tensors, 84 parameters, 168 B"))
        let json = try lopper(["inspect", "--json", fixtures + "/all_dtypes.safetensors"])
        let object = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as! [String: Any]
        XCTAssertEqual((object["tensors"] as! [[String: Any]]).count, 17)
        XCTAssertEqual((object["metadata"] as! [String: String])["source"], "make_fixtures.py")
        let bad = NSTemporaryDirectory() + "lopper-inspect-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try Data([9, 9, 9]).write(to: URL(fileURLWithPath: bad))
        let failure = try lopper(["inspect", bad])
        XCTAssertEqual(failure.status, 1)
        XCTAssertEqual(failure.err, "lopper: error: \(bad): file is 3 bytes, too short for the 8-byte header length\n")
    }
}
