import Foundation
import XCTest
import LopperCore
@testable import LopperIO
import CTempPaths

final class SafetensorsWriteTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "lopper-io-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func sample() -> [(String, Tensor)] {
        [("a.weight", Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], dtype: .bf16)),
         ("a.bias", Tensor([0.5, -0.5], shape: [2], dtype: .f32)),
         ("scalar", Tensor([7], shape: [], dtype: .f16)),
         ("empty", try! Tensor(zeros: [0, 4], dtype: .f32))]
    }

    func testRoundTripAndHeaderLayout() throws {
        let path = folder + "/m.safetensors"
        try saveSafetensors(sample(), to: path, metadata: ["method": "dare"])
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.names, sample().map(\.0))
        XCTAssertEqual(file.metadata, ["format": "pt", "method": "dare"])
        XCTAssertEqual(file.dataOffset % 8, 0, "header padded to 8 bytes")
        for (name, tensor) in sample() {
            XCTAssertEqual(try file.tensor(name).floats(), tensor.floats())
            XCTAssertEqual(try file.tensor(name).dtype, tensor.dtype)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder)
        XCTAssertEqual(leftovers, ["m.safetensors"], "no temporary files left")
    }

    /// Writes go through aligned staging buffers, with O_DIRECT where the file system allows:
    /// pieces of every size across buffer boundaries, and a tail that is not a whole block,
    /// must give the same bytes as the buffered path and as the pieces joined here. Pieces
    /// whose memory lies at their file offset modulo the block size go to the disk from
    /// there, all their whole blocks past the first boundary when they are long enough;
    /// pieces one byte off never do.
    func testDirectAndBufferedWritesGiveTheSameBytes() throws {
        var generator = SplitMix(state: 41)
        let staging = StagedFileOutput.stagingBytes, block = StagedFileOutput.alignment
        let sizes = [7, staging - 7, 1, 2 * staging + 4095, 4096, StagedFileOutput.directSpanBytes - 1, 12_345,
                     StagedFileOutput.directSpanBytes + 3 * block + 5, 100]
        let pieces = sizes.map { count in (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 56) } }
        let expected = Data(pieces.joined())
        let room = UnsafeMutableRawPointer.allocate(byteCount: sizes.max()! + 2 * block, alignment: block)
        defer { room.deallocate() }
        let saved = StagedFileOutput.directWrites
        defer { StagedFileOutput.directWrites = saved }
        let directAvailable = Self.fileSystemTakesDirectWrites(folder)
        for direct in [true, false] {
            for aligned in [true, false] {
                StagedFileOutput.directWrites = direct
                let path = folder + "/staged-\(direct)-\(aligned)"
                let output = try StagedFileOutput(creating: path, reportedAs: path)
                var offset = 0, inPlace = 0
                for piece in pieces {
                    // The piece's copy lies at its file offset modulo the block size, or one byte past it.
                    let at = room + offset % block + (aligned ? 0 : 1)
                    piece.withUnsafeBytes { at.copyMemory(from: $0.baseAddress!, byteCount: piece.count) }
                    try output.append(UnsafeRawBufferPointer(start: at, count: piece.count))
                    if aligned && piece.count >= StagedFileOutput.directSpanBytes {
                        let head = (block - offset % block) % block
                        inPlace += (piece.count - head) / block * block
                    }
                    offset += piece.count
                }
                try output.finish()
                let what = "direct writes: \(direct), aligned: \(aligned)"
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), expected, what)
                if !direct || !directAvailable { XCTAssertEqual(output.directBytes, 0, what) } else {
                    XCTAssertEqual(output.inPlaceBytes, aligned ? inPlace : 0, what)
                    if !aligned {
                        XCTAssertEqual(output.directBytes, expected.count / staging * staging, "every full staging buffer went with O_DIRECT")
                    }
                }
            }
        }
    }

    static func fileSystemTakesDirectWrites(_ folder: String) -> Bool {
        let probe = folder + "/probe"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor); unlink(probe) }
        return descriptor >= 0 && lopper_set_direct(descriptor, 1) == 0
    }

    func testUnfinishedWriteLeavesNothing() throws {
        let path = folder + "/m.safetensors"
        do {
            let writer = try SafetensorsWriter(path: path, entries: sample().map { .init(name: $0.0, dtype: $0.1.dtype, shape: $0.1.shape) })
            try writer.write(sample()[0].1, name: "a.weight")
            XCTAssertThrowsError(try writer.write(Tensor(zeros: [3]), name: "a.bias"), "shape differs from the plan")
            XCTAssertThrowsError(try writer.finish())
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testShardedWriterLayoutAndIndex() throws {
        let entries = (0..<5).map { SafetensorsWriter.Entry(name: "layers.\($0).weight", dtype: .f32, shape: [10]) }
        let out = folder + "/model"
        let writer = try ShardedWriter(folder: out, entries: entries, maxShardBytes: 100, metadata: ["seed": "1"])
        for entry in entries { try writer.write(Tensor(Array(repeating: 1, count: 10)), name: entry.name) }
        try writer.finish(copying: try Checkpoint(path: SafetensorsReadTests.fixtures + "/sharded"))
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, ["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                               "model-00003-of-00003.safetensors", "model.safetensors.index.json"])
        let checkpoint = try Checkpoint(path: out)
        XCTAssertEqual(checkpoint.names, entries.map(\.name))
        XCTAssertEqual(checkpoint.shards[0].metadata["seed"], "1")
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors.index.json"))) as! [String: Any]
        XCTAssertEqual((index["metadata"] as! [String: Any])["total_size"] as? Int, 200)
        XCTAssertEqual((index["weight_map"] as! [String: String])["layers.4.weight"], "model-00003-of-00003.safetensors")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model"], "no temporary folder left")
        XCTAssertThrowsError(try ShardedWriter(folder: out, entries: entries), "refuses to overwrite")
        // With overwrite, the existing folder is swapped for the new one (RENAME_EXCHANGE) and removed.
        let again = try ShardedWriter(folder: out, shards: [[entries[0]]], overwrite: true, stem: "adapter_model")
        try again.write(Tensor(Array(repeating: 2, count: 10)), name: entries[0].name)
        try again.finish()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["adapter_model.safetensors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model"], "old folder and temporary removed")
    }

    /// With a source checkpoint, each shard's header is padded so that tensors the source
    /// holds alike lie at their input offsets modulo the block size (and copy from its
    /// mapping); the values are the same, and without a source the data starts 8-aligned.
    func testShardsLineUpWithTheirSource() throws {
        let source = folder + "/source", values = (0..<(1 << 19)).map { Float($0 % 1000) / 7 }
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let tensors: [(String, Tensor)] = [("norm", Tensor([1, 2, 3], dtype: .bf16)), ("big", Tensor(values, dtype: .f32)),
                                           ("bias", Tensor([4, 5], dtype: .f32))]
        try saveSafetensors(tensors, to: source + "/model.safetensors", metadata: ["from": "elsewhere, with a longer header"])
        let checkpoint = try Checkpoint(path: source)
        let entries = tensors.map { SafetensorsWriter.Entry(name: $0.0, dtype: $0.1.dtype, shape: $0.1.shape) }
        for lined in [true, false] {
            let out = folder + "/out-\(lined)"
            let writer = try ShardedWriter(folder: out, shards: [entries], metadata: ["m": "1"], source: lined ? checkpoint : nil)
            try writer.writeAll(tensor: { try checkpoint.tensor($0.name) })
            let written = try SafetensorsFile(path: out + "/model.safetensors"), input = try XCTUnwrap(checkpoint.shard(of: "big"))
            let block = StagedFileOutput.alignment
            if lined { XCTAssertEqual(written.dataOffset % block, input.dataOffset % block) }
            else { XCTAssertNotEqual(written.dataOffset % block, input.dataOffset % block, "the headers differ in length") }
            XCTAssertEqual(written.dataOffset % 8, 0)
            for (name, tensor) in tensors { XCTAssertEqual(try written.tensor(name).floats(), tensor.floats(), name) }
        }
    }

    func testSingleShardIsModelSafetensorsAndFailureLeavesNoFolder() throws {
        let out = folder + "/single"
        let entries = [SafetensorsWriter.Entry(name: "w", dtype: .f32, shape: [2])]
        let writer = try ShardedWriter(folder: out, entries: entries)
        try writer.write(Tensor([1, 2]), name: "w")
        try writer.finish()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["model.safetensors"])
        do {
            let failing = try ShardedWriter(folder: folder + "/failed", entries: entries + [.init(name: "v", dtype: .f32, shape: [1])])
            try failing.write(Tensor([1, 2]), name: "w")
            XCTAssertThrowsError(try failing.write(Tensor([1, 2]), name: "v"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["single"])
    }

    /// Files Lopper writes load in the reference Python library.
    func testPythonSafetensorsLoadsOurFiles() throws {
        let path = folder + "/m.safetensors"
        try saveSafetensors(sample().filter { $0.1.dtype != .bf16 }, to: path, metadata: ["method": "dare"])
        let script = """
        import sys, json
        from safetensors import safe_open
        with safe_open(sys.argv[1], framework="numpy") as f:
            print(json.dumps({"meta": f.metadata(), "keys": sorted(f.keys()), "bias": f.get_tensor("a.bias").tolist()}))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        do { try process.run() } catch { throw XCTSkip("python3 not available") }
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            probe.arguments = ["python3", "-c", "import safetensors, numpy"]
            probe.standardError = Pipe()
            try probe.run(); probe.waitUntilExit()
            if probe.terminationStatus != 0 { throw XCTSkip("python safetensors not importable") }
            return XCTFail("python safetensors could not load the file: \(output)")
        }
        XCTAssertTrue(output.contains("\"method\": \"dare\""), output)
        XCTAssertTrue(output.contains("\"format\": \"pt\""), output)
        XCTAssertTrue(output.contains("[0.5, -0.5]"), output)
    }
}
