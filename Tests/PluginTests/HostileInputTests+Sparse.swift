import Foundation
import XCTest
import LopperCore
import LopperIO

/// `lopper apply` of a sparse delta that does not belong to the base or was damaged: by
/// class (wrong base by name, shape or values; corrupted values, checksum or mask rule;
/// truncated file), one line naming what is wrong, inputs untouched, nothing written.
final class HostileSparseTests: XCTestCase {
    func testBadSparseDeltasAreRefusedAndWriteNothing() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let root = fixture.folder, sparse = root + "/sparse"
        let pruned = try HostileHarness.run(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned, "--method", "dare",
                                             "--set", "rate=0.9", "--output", "sparse", "--out", sparse, "--quiet"])
        XCTAssertEqual(pruned.status, 0, pruned.error)
        let good = try HostileHarness.run(["apply", "--base", fixture.base, "--delta", sparse, "--out", root + "/good"])
        XCTAssertEqual(good.status, 0, good.error)

        // Damaged copies of the delta: one byte of a value, a checksum digit, the mask rule, a truncated shard.
        let file = sparse + "/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let headerEnd = 8 + Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let values = try XCTUnwrap(Checkpoint(path: sparse).info("model.layers.1.mlp.up_proj.weight" + SparseFormat.valuesSuffix))
        func damaged(_ label: String, _ change: (inout Data) throws -> Void) throws -> String {
            let folder = root + "/" + label
            try FileManager.default.copyItem(atPath: sparse, toPath: folder)
            var data = bytes
            try change(&data)
            try data.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
            return folder
        }
        func replacing(_ data: inout Data, _ old: String, _ new: String) throws {
            let range = try XCTUnwrap(data.range(of: Data(old.utf8)), old)
            data.replaceSubrange(range, with: Data(new.utf8))
        }
        let header = String(decoding: bytes[8..<headerEnd], as: UTF8.self)
        let checksum = try XCTUnwrap(header.range(of: #"up_proj.weight\\",\\"positions_checksum\\":\\"[0-9a-f]{16}"#, options: .regularExpression).map { String(header[$0]) })
        let flipped = String(checksum.dropLast()) + (checksum.last == "0" ? "1" : "0")
        let corrupted: [(String, String, (inout Data) throws -> Void)] = [
            ("values", "do not match their checksum", { $0[headerEnd + values.begin + 3] ^= 0x40 }),
            ("checksum", "checksum", { try replacing(&$0, checksum, flipped) }),
            ("rule", "mask rule", { try replacing(&$0, "bernoulli16", "bernoulli17") }),
            ("truncated", "model.safetensors", { $0 = $0.prefix($0.count - 100) }),
        ]

        // Wrong bases: another model's values, other names, other shapes.
        let names = try HostileHarness.pair(in: root + "/names", names: ["model.layers.9.mlp.up_proj.weight"])
        let shapes = root + "/shapes"
        try FileManager.default.createDirectory(atPath: shapes, withIntermediateDirectories: true)
        let base = try Checkpoint(path: fixture.base)
        try saveSafetensors(try base.names.map { name in
            let tensor = try base.tensor(name)
            return (name, tensor.rank == 2 ? try tensor.reshaped([tensor.shape[1], tensor.shape[0]]) : tensor)
        }, to: shapes + "/model.safetensors")

        var cases: [HostileCase] = []
        for (label, culprit, change) in corrupted {
            let delta = try damaged(label, change)
            cases.append(HostileCase(name: "corrupted \(label)", arguments: ["apply", "--base", fixture.base, "--delta", delta, "--out", root + "/out"],
                                     culprit: culprit, inputs: [fixture.base, delta], watched: [root]))
        }
        for (label, wrong, culprit) in [("values", fixture.finetuned, "has other values"), ("names", names.base, "has no tensor"),
                                        ("shapes", shapes, "the delta was made against")] {
            cases.append(HostileCase(name: "wrong base: \(label)", arguments: ["apply", "--base", wrong, "--delta", sparse, "--out", root + "/out"],
                                     culprit: culprit, inputs: [wrong, sparse], watched: [root]))
        }
        for hostile in cases { try HostileHarness.expectFailure(hostile) }
    }
}
