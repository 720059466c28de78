import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// Every output says how it was made (typed parameters, the plugin's name, version,
/// SHA-256 and source, seed, Lopper version, command line), and `lopper reproduce`
/// re-runs that and verifies it byte for byte, or names the first tensor that differs.
final class ProvenanceTests: XCTestCase {
    func testMetadataRecordsTypedParametersAndThePluginsCode() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let file = PipelineFixture.pluginsFolder + "/darex_q.lua"
        try fixture.prune(try Plugin(path: file), ["rate=0.99", "mode=fixed", "q=0.5", "*.q_proj.*:rate=[0.9,0.95]"], seed: 7)
        let metadata = try Checkpoint(path: fixture.folder + "/out").shards[0].metadata
        let parameters = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(metadata["lopper.parameters"]!.utf8)) as? [String: Any])
        XCTAssertEqual(parameters["rate"] as? Double, 0.99)
        XCTAssertEqual(parameters["q"] as? Double, 0.5)
        XCTAssertEqual(parameters["mode"] as? String, "fixed")
        XCTAssertEqual(parameters["*.q_proj.*:rate"] as? [Double], [0.9, 0.95])
        XCTAssertTrue(metadata["lopper.parameters"]!.contains("\"q\":0.5,"), metadata["lopper.parameters"]!)
        let types = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(metadata["lopper.parameter_types"]!.utf8)) as? [String: String])
        XCTAssertEqual(types["rate"], "number")
        XCTAssertEqual(types["mode"], "string")
        XCTAssertEqual(metadata["lopper.settings"], #"["rate=0.99","mode=fixed","q=0.5","*.q_proj.*:rate=[0.9,0.95]"]"#)
        XCTAssertEqual(metadata["lopper.method_version"], "2.0.0")
        XCTAssertEqual(metadata["lopper.seed"], "7")
        let source = try Data(contentsOf: URL(fileURLWithPath: file))
        XCTAssertEqual(metadata["lopper.method_sha256"], SHA256.hex(source))
        XCTAssertEqual(metadata["lopper.method_source_size"], String(source.count))
        let packed = try XCTUnwrap(Data(base64Encoded: metadata["lopper.method_source"] ?? ""))
        XCTAssertEqual(try Deflate.decompress(packed, expectedSize: source.count), source)
        XCTAssertLessThan(packed.count, source.count)
        let record = try RunProvenance(metadata: metadata, file: "out")
        XCTAssertEqual(record.embeddedSource.map { Data($0.utf8) }, source)
        XCTAssertEqual(record.parameters["q"], .number(0.5))
    }

    /// Every reference method's output is reproduced byte for byte by the binary, from
    /// its name@version; wanda and darex_q's analytical mode with their calibration file.
    func testReproduceVerifiesEveryReferenceMethod() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let statistics = try CalibratedMethodTests.writeStatistics(fixture)
        let runs: [(String, [String], Bool)] = [
            ("dare", ["--set", "rate=0.9"], false),
            ("darex_q", ["--set", "rate=0.99", "--set", "mode=analytical", "--set", "*.q_proj.*:rate=0.9"], true),
            ("structural", ["--set", "rate=0.5"], false),
            ("magnitude", ["--set", "rate=0.8", "--set", "granularity=row", "--set", "rescale=l1"], false),
            ("wanda", ["--set", "rate=0.5"], true),
        ]
        for (method, settings, calibrated) in runs {
            let out = fixture.folder + "/" + method
            let calibration = calibrated ? ["--calibration", statistics] : []
            let pruned = try LopperBinary.run(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", method,
                                               "--seed", "5", "--output", "delta", "--quiet", "--out", out] + settings + calibration)
            XCTAssertEqual(pruned.status, 0, pruned.error)
            let metadata = try Checkpoint(path: out).shards[0].metadata
            XCTAssertTrue(metadata["lopper.command_line"]?.contains("\"--method\",\"\(method)\"") == true, metadata["lopper.command_line"] ?? "")
            XCTAssertEqual(metadata["lopper.method_origin"], "bundled")
            let reproduced = try LopperBinary.run(["reproduce", out, "--base", fixture.base, "--finetuned", fixture.finetuned] + calibration)
            XCTAssertEqual(reproduced.status, 0, "\(method): \(reproduced.error)")
            XCTAssertTrue(reproduced.output.contains("reproduced \(out): 11 tensors byte-identical"), reproduced.output)
        }
        let refused = try LopperBinary.run(["reproduce", fixture.folder + "/wanda", "--base", fixture.base, "--finetuned", fixture.finetuned])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.error.contains("pass them with --calibration FILE"), refused.error)
    }

    /// A plugin file changed after the run: reproduce names the first differing tensor
    /// and the reason; `--recorded-source` runs the code recorded in the output instead.
    func testReproduceNamesTheTensorWhenThePluginChanged() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        let plugin = fixture.folder + "/mine.lua", out = fixture.folder + "/out"
        let source = try String(contentsOfFile: PipelineFixture.pluginsFolder + "/dare.lua", encoding: .utf8)
        try source.write(toFile: plugin, atomically: true, encoding: .utf8)
        let pruned = try LopperBinary.run(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", plugin,
                                           "--set", "rate=0.5", "--quiet", "--out", out])
        XCTAssertEqual(pruned.status, 0, pruned.error)
        let arguments = ["reproduce", out, "--base", fixture.base, "--finetuned", fixture.finetuned]
        XCTAssertEqual(try LopperBinary.run(arguments).status, 0)
        // Same hook, another rescale: every pruned tensor changes; the first in file order is named.
        try source.replacingOccurrences(of: "/ keep", with: "/ keep * 1.5").write(toFile: plugin, atomically: true, encoding: .utf8)
        let changed = try LopperBinary.run(arguments)
        XCTAssertEqual(changed.status, 1)
        let first = try Checkpoint(path: out).names.first { PipelineFixture.prunable.contains($0) }!
        XCTAssertTrue(changed.error.contains("tensor \"\(first)\" differs (element"), changed.error)
        XCTAssertTrue(changed.error.contains("the plugin's code changed"), changed.error)
        let recorded = try LopperBinary.run(arguments + ["--recorded-source"])
        XCTAssertEqual(recorded.status, 0, recorded.error)
        // A changed input is named as the likely cause when the code is the same.
        try source.write(toFile: plugin, atomically: true, encoding: .utf8)
        let other = try LopperBinary.run(["reproduce", out, "--base", fixture.finetuned, "--finetuned", fixture.finetuned])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.error.contains("checkpoint differs from the one the run used"), other.error)
    }
}
