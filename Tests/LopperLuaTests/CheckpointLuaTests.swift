import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua

/// `lopper.load`, `lopper.delta` and `lopper.save` against sharded folders written here
/// with LopperIO, with expected values computed in Swift from the source arrays.
final class CheckpointLuaTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "lopper-ck-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Values exactly representable in BF16 (multiples of 1/8 in [-8, 8)), so BF16
    /// tensors compare exactly.
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 58) - 32) / 4 + Float(Int((state >> 40) & 7)) / 8 - 2
        }
    }

    /// name -> (shape, dtype, values) of a small model.
    private func model(seed: UInt64, attentionShape: [Int] = [8, 16]) -> [(String, [Int], DType, [Float])] {
        [
            ("embed.weight", [32, 8], .bf16, values(256, seed: seed)),
            ("layers.0.attn.weight", attentionShape, .bf16, values(128, seed: seed + 1)),
            ("layers.0.attn.bias", [8], .f32, values(8, seed: seed + 2)),
            ("layers.0.mlp.weight", [16, 8], .f32, values(128, seed: seed + 3)),
            ("norm.weight", [8], .f32, values(8, seed: seed + 4)),
        ]
    }

    /// A sharded HF folder (shards of at most 512 bytes, index, config.json).
    @discardableResult
    private func writeFolder(_ name: String, _ tensors: [(String, [Int], DType, [Float])]) throws -> String {
        let folder = root + "/" + name
        let writer = try ShardedWriter(folder: folder, entries: tensors.map { .init(name: $0.0, dtype: $0.2, shape: $0.1) },
                                       maxShardBytes: 512, metadata: ["source": name])
        for (name, shape, dtype, values) in tensors {
            try writer.write(try Tensor(values, shape: shape).converted(to: dtype), name: name)
        }
        try writer.finish()
        try Data("{\"model_type\": \"test\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        return folder
    }

    private func floats(_ value: LuaValue?, file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        try XCTUnwrap(value?.tensor, "expected a tensor", file: file, line: line).floats()
    }

    func testLoadShardedFolderNamesInfoMetadataAndValues() throws {
        let tensors = model(seed: 10)
        let folder = try writeFolder("base", tensors)
        XCTAssertGreaterThan(try Checkpoint(path: folder).shards.count, 1, "fixture must be sharded")
        let lua = try LuaState()
        defer { lua.close() }
        let results = try lua.run("""
        local ck = lopper.load(...)
        local info = ck:info("layers.0.attn.weight")
        local seen = {}
        for name, t in pairs(ck) do seen[#seen + 1] = name .. ":" .. t:dtype() end
        return table.concat(ck:names(), ","), #ck, info.dtype, table.concat(info.shape, "x"), info.bytes,
               ck:metadata().source, table.concat(seen, ","), tostring(ck),
               ck["embed.weight"], ck:tensor("layers.0.mlp.weight"), ck["layers.0.attn.weight"]:dtype()
        """, arguments: [.string(folder)])
        XCTAssertEqual(results[0].string, tensors.map(\.0).joined(separator: ","))
        XCTAssertEqual(results[1].number, 5)
        XCTAssertEqual(results[2].string, "BF16")
        XCTAssertEqual(results[3].string, "8x16")
        XCTAssertEqual(results[4].number, 256)
        XCTAssertEqual(results[5].string, "base")
        XCTAssertEqual(results[6].string, tensors.map { "\($0.0):\($0.2.name)" }.joined(separator: ","))
        let summary = try XCTUnwrap(results[7].string)
        XCTAssertTrue(summary.contains(folder) && summary.contains("5 tensors") && summary.contains("shards"), summary)
        XCTAssertEqual(try floats(results[8]), tensors[0].3)
        XCTAssertTrue(try XCTUnwrap(results[8].tensor).storage.isMapped, "ck[name] is a view of the mapping")
        XCTAssertEqual(try floats(results[9]), tensors[3].3)
        XCTAssertEqual(results[10].string, "BF16")
    }

    func testDeltaValuesEqualFinetunedMinusBase() throws {
        let base = model(seed: 1), finetuned = model(seed: 2)
        let basePath = try writeFolder("base", base)
        var ftTensors = finetuned
        ftTensors.append(("classifier.weight", [2, 8], .f32, values(16, seed: 9)))  // only in the fine-tuned model
        let ftPath = try writeFolder("ft", ftTensors)
        let lua = try LuaState()
        defer { lua.close() }
        let results = try lua.run("""
        local d = lopper.delta(...)
        local out = {table.concat(d:names(), ","), #d, d["classifier.weight"] == nil}
        for name, t in pairs(d) do out[#out + 1] = t end
        out[#out + 1] = d:base("norm.weight")
        out[#out + 1] = d:finetuned("norm.weight")
        out[#out + 1] = d:tensor("embed.weight"):dtype()
        return table.unpack(out)
        """, arguments: [.string(basePath), .string(ftPath)])
        XCTAssertEqual(results[0].string, base.map(\.0).joined(separator: ","))
        XCTAssertEqual(results[1].number, 5)
        XCTAssertEqual(results[2].boolean, true)
        for (index, (b, f)) in zip(base, finetuned).enumerated() {
            XCTAssertEqual(try floats(results[3 + index]), zip(f.3, b.3).map { $0 - $1 }, b.0)
        }
        XCTAssertEqual(try floats(results[8]), base[4].3)
        XCTAssertEqual(try floats(results[9]), finetuned[4].3)
        XCTAssertEqual(results[10].string, "F32")
    }

    func testSaveRoundTripsFileAndShardedFolder() throws {
        let tensors = model(seed: 5)
        let source = try writeFolder("source", tensors)
        let file = root + "/out.safetensors", folder = root + "/out", converted = root + "/bf16"
        let lua = try LuaState()
        defer { lua.close() }
        try lua.run("""
        local source, file, folder, converted = ...
        local ck = lopper.load(source)
        lopper.save(ck, file, {metadata = {method = "copy", seed = 42}})
        lopper.save(ck, folder, {shard_size = "0.5kB", copy_files = ck})
        lopper.save(ck, converted, {dtype = "bf16", shard_size = 1e9})
        """, arguments: [.string(source), .string(file), .string(folder), .string(converted)])

        let single = try Checkpoint(path: file)
        XCTAssertEqual(single.names, tensors.map(\.0))
        XCTAssertEqual(single.shards[0].metadata, ["method": "copy", "seed": "42", "format": "pt"])
        let sharded = try Checkpoint(path: folder)
        XCTAssertGreaterThan(sharded.shards.count, 1)
        XCTAssertNotNil(sharded.indexPath)
        XCTAssertEqual(sharded.otherFiles, ["config.json"])
        let bf16 = try Checkpoint(path: converted)
        XCTAssertEqual(bf16.shards.count, 1)
        XCTAssertNil(bf16.indexPath)
        XCTAssertTrue(bf16.otherFiles.isEmpty, "config is copied only with copy_files")
        for (name, shape, dtype, values) in tensors {
            for checkpoint in [single, sharded] {
                XCTAssertEqual(checkpoint.info(name)?.dtype, dtype, name)
                XCTAssertEqual(checkpoint.info(name)?.shape, shape, name)
                XCTAssertEqual(try checkpoint.tensor(name).floats(), values, name)
            }
            XCTAssertEqual(bf16.info(name)?.dtype, .bf16, name)
            XCTAssertEqual(try bf16.tensor(name).floats(), values, name)  // exact in BF16
        }
        // No temporary files are left next to the outputs.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
    }

    func testSaveIteratorTableAndPairsOrders() throws {
        let out = root + "/iter", pairsFile = root + "/pairs.safetensors"
        let lua = try LuaState()
        defer { lua.close() }
        try lua.run("""
        local out, pairsFile = ...
        local i = 0
        lopper.save(function()
          i = i + 1
          if i <= 3 then return "t" .. (4 - i), lopper.full({i, 2}, i) end
        end, out, {shard_size = 20})
        lopper.save({{"z", lopper.ones({2})}, {"a", lopper.zeros({3}, "F16")}}, pairsFile)
        """, arguments: [.string(out), .string(pairsFile)])
        let iterated = try Checkpoint(path: out)
        XCTAssertEqual(iterated.names, ["t3", "t2", "t1"])
        XCTAssertEqual(iterated.shards.count, 3)
        XCTAssertEqual(try iterated.tensor("t1").floats(), [Float](repeating: 3, count: 6))
        let pairs = try Checkpoint(path: pairsFile)
        XCTAssertEqual(pairs.names, ["z", "a"])
        XCTAssertEqual(pairs.info("a")?.dtype, .f16)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: root).contains { $0.contains(".spill-") })
    }

    func testErrorsNameCheckpointTensorAndShapes() throws {
        let basePath = try writeFolder("base", model(seed: 1))
        let ftPath = try writeFolder("ft", model(seed: 2, attentionShape: [16, 8]))
        let lua = try LuaState()
        defer { lua.close() }
        lua.setGlobal("base", .string(basePath))
        lua.setGlobal("ft", .string(ftPath))
        lua.setGlobal("out", .string(root + "/out"))
        func message(_ code: String) -> String {
            do { try lua.run(code); return "no error" } catch { return (error as? LuaError)?.message ?? "\(error)" }
        }
        let unknown = message("lopper.load(base):tensor('layers.0.mlp.weigth')")
        XCTAssertTrue(unknown.contains("tensor: no tensor \"layers.0.mlp.weigth\" in checkpoint \(basePath)"), unknown)
        XCTAssertTrue(unknown.contains("did you mean \"layers.0.mlp.weight\""), unknown)
        let info = message("lopper.load(base):info('nope')")
        XCTAssertTrue(info.contains("info: no tensor \"nope\" in checkpoint \(basePath)"), info)
        let mismatch = message("local d = lopper.delta(base, ft); return d['layers.0.attn.weight']")
        XCTAssertTrue(mismatch.contains("tensor \"layers.0.attn.weight\" has shape [8,16] in the base"), mismatch)
        XCTAssertTrue(mismatch.contains("[16,8] in the fine-tuned checkpoint"), mismatch)
        // Other tensors of that delta still work.
        XCTAssertEqual(try lua.run("return lopper.delta(base, ft)['norm.weight']:numel()").first?.number, 8)
        let saveMismatch = message("lopper.save(lopper.delta(base, ft), out)")
        XCTAssertTrue(saveMismatch.contains("save: \(root)/out: tensor \"layers.0.attn.weight\" has shape"), saveMismatch)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/out"))
        for bad in ["'2XB'", "0", "-5", "1.5", "'GB'", "{}"] {
            let text = message("lopper.save({x = lopper.zeros({2})}, out, {shard_size = \(bad)})")
            XCTAssertTrue(text.contains("save: \(root)/out: bad shard_size"), "\(bad): \(text)")
        }
        let fileShards = message("lopper.save({x = lopper.zeros({2})}, out .. '.safetensors', {shard_size = 10})")
        XCTAssertTrue(fileShards.contains("shard_size needs a folder path"), fileShards)
        let exists = message("lopper.save({x = lopper.zeros({2})}, base)")
        XCTAssertTrue(exists.contains("save \(basePath): exists; pass {overwrite = true}"), exists)
        // A checkpoint is never saved over itself or into itself, overwrite or not.
        for target in ["base", "base .. '/inner'"] {
            let onto = message("lopper.save(lopper.load(base), \(target), {overwrite = true})")
            XCTAssertTrue(onto.contains("the input being saved"), onto)
        }
        let badValue = message("lopper.save({x = 3}, out)")
        XCTAssertTrue(badValue.contains("save: \"x\" must be a tensor, got a number value"), badValue)
        let iterator = message("lopper.save(function() error('iterator failed') end, out)")
        XCTAssertTrue(iterator.contains("iterator failed"), iterator)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: root).contains { $0.hasPrefix(".") })
    }

    func testNothingLeaksAndMappingsAreReleased() throws {
        let basePath = try writeFolder("base", model(seed: 1))
        let ftPath = try writeFolder("ft", model(seed: 2))
        let heapBefore = Storage.liveHeapCount
        do {
            let lua = try LuaState()
            try lua.run("""
            local base, ft, out = ...
            local ck = lopper.load(base)
            local views = {}
            for name, t in pairs(ck) do views[name] = t end
            local d = lopper.delta(base, ft)
            local sum = 0
            for name, t in pairs(d) do sum = sum + (t * 2):sum() end
            lopper.save(d, out .. "/delta.safetensors", {dtype = "bf16"})
            lopper.save(coroutine.wrap(function()
              for name, t in pairs(d) do coroutine.yield(name, t:abs()) end
            end), out .. "/abs")
            kept = {ck, d, views, lopper.load(out .. "/abs")}
            """, arguments: [.string(basePath), .string(ftPath), .string(root)])
            XCTAssertTrue(try mappedPaths().contains { $0.hasPrefix(root) }, "views map the files while Lua holds them")
            lua.collectGarbage()
            lua.close()
        }
        XCTAssertEqual(Storage.liveHeapCount, heapBefore, "heap tensors leaked")
        XCTAssertEqual(try mappedPaths().filter { $0.hasPrefix(root) }, [], "files still mapped")
    }

    func testSandboxHasNoCheckpointFunctions() throws {
        let lua = try LuaState(sandbox: .init())
        defer { lua.close() }
        XCTAssertEqual(try lua.run("return lopper.load, lopper.save, lopper.delta").map { "\($0)" }, ["nil", "nil", "nil"])
    }

    /// Files mapped into this process (/proc/self/maps), Linux only.
    private func mappedPaths() throws -> [String] {
        // /proc files report size 0: read to the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { throw XCTSkip("no /proc/self/maps") }
        defer { try? handle.close() }
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertFalse(maps.isEmpty, "/proc/self/maps read empty")
        return maps.split(separator: "\n").compactMap { line in
            line.firstIndex(of: "/").map { String(line[$0...]) }
        }
    }
}
