import Foundation
import XCTest
import LopperCore
import LopperIO

/// Files written by the Python `safetensors` library (Scripts/make_fixtures.py).
final class SafetensorsReadTests: XCTestCase {
    static var fixtures: String { Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path }

    struct Expected: Decodable { let shape: [Int]; let values: [Double] }

    func expected() throws -> [String: Expected] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/expected.json"))
        return try JSONDecoder().decode([String: Expected].self, from: data)
    }

    func testEveryDtypeReadsWithTheRightValues() throws {
        let file = try SafetensorsFile(path: Self.fixtures + "/all_dtypes.safetensors")
        let expected = try expected()
        XCTAssertEqual(file.metadata["source"], "make_fixtures.py")
        XCTAssertEqual(file.metadata["format"], "pt")
        let dtypes: [String: DType] = ["bool": .bool, "u8": .u8, "i8": .i8, "i16": .i16, "u16": .u16, "f16": .f16,
                                       "bf16": .bf16, "i32": .i32, "u32": .u32, "f32": .f32, "f64": .f64, "i64": .i64,
                                       "u64": .u64, "f8_e4m3": .f8e4m3, "f8_e5m2": .f8e5m2, "scalar": .f32, "empty": .f32]
        XCTAssertEqual(Set(file.names), Set(dtypes.keys))
        for (name, dtype) in dtypes {
            let tensor = try file.tensor(name)
            XCTAssertEqual(tensor.dtype, dtype, name)
            XCTAssertEqual(tensor.shape, expected[name]!.shape, name)
            XCTAssertFalse(tensor.isWritable, "file views are read-only")
            if dtype == .f8e4m3 || dtype == .f8e5m2 { continue }
            XCTAssertEqual(tensor.floats().map(Double.init), expected[name]!.values, name)
        }
        XCTAssertEqual(try file.tensor("scalar").shape, [])
        XCTAssertEqual(try file.tensor("empty").count, 0)
        XCTAssertThrowsError(try file.tensor("missing"))
    }

    func testShardedFolderReadsAcrossShards() throws {
        let checkpoint = try Checkpoint(path: Self.fixtures + "/sharded")
        let expected = try expected()
        XCTAssertEqual(checkpoint.shards.count, 2)
        XCTAssertEqual(checkpoint.names, ["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight",
                                          "model.layers.1.mlp.up_proj.weight", "model.norm.weight"])
        XCTAssertEqual(checkpoint.otherFiles, ["config.json"])
        XCTAssertNotNil(checkpoint.indexPath)
        for name in checkpoint.names {
            let tensor = try checkpoint.tensor(name)
            XCTAssertEqual(tensor.dtype, .bf16)
            XCTAssertEqual(tensor.floats().map(Double.init), expected["sharded/" + name]!.values, name)
        }
        XCTAssertTrue(checkpoint.shard(of: "model.norm.weight")!.path.hasSuffix("model-00002-of-00002.safetensors"))
    }
}
