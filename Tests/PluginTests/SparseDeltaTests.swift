import Foundation
import XCTest
import LopperCore
import LopperIO
import LopperLua
import LopperPrune

/// `--output sparse` and `lopper apply` of it: the rebuilt model is the merged output of
/// the same run byte for byte, for every reference method, dtype and thread count, and
/// random masks are addressed by seed (no positions stored) only when that is exact.
final class SparseDeltaTests: XCTestCase {
    static let methods: [(String, [String])] = [
        ("dare", ["rate=0.9"]), ("darex_q", ["rate=0.9"]), ("structural", ["rate=0.5"]),
        ("magnitude", ["rate=0.9"]), ("wanda", ["rate=0.75"]),
    ]

    override func tearDown() { Parallel.threads = ProcessInfo.processInfo.activeProcessorCount }

    /// Input norms for WANDA (and means for DAREx-q), as `lopper calibrate` writes them.
    static func statistics(_ fixture: PipelineFixture) throws -> String {
        let path = fixture.folder + "/stats.safetensors"
        var tensors: [(String, Tensor)] = []
        for name in PipelineFixture.prunable where name.hasSuffix(".weight") {
            let columns = try fixture.finetunedTensor(name).shape[1]
            tensors.append((name + ".input_mean", Tensor((0..<columns).map { 0.5 + Float($0 % 3) })))
            tensors.append((name + ".input_norm", Tensor((0..<columns).map { Float($0 + 1) / Float(columns) })))
        }
        if !FileManager.default.fileExists(atPath: path) { try saveSafetensors(tensors, to: path, metadata: ["lopper.tokens": "100"]) }
        return path
    }

    @discardableResult
    static func prune(_ fixture: PipelineFixture, _ method: PruneMethod, _ settings: [String], out: String,
                      sparse: SparseOptions?, calibration: String? = nil, dtype: DType? = nil) throws -> RunReport {
        var configuration = PruneConfiguration(basePath: fixture.base, finetunedPath: fixture.finetuned, outputPath: fixture.folder + "/" + out)
        configuration.settings = try settings.map(Setting.init(parsing:))
        configuration.seed = 5
        configuration.sparse = sparse
        configuration.calibrationPath = calibration
        configuration.dtype = dtype
        return try Pruner(configuration, method: method).run()
    }

    /// Every tensor of `applied` has the bytes of the same tensor of `merged`, and the names agree.
    static func assertSameTensors(_ applied: String, _ merged: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try Checkpoint(path: applied), m = try Checkpoint(path: merged)
        XCTAssertEqual(a.names, m.names, label, file: file, line: line)
        for name in m.names {
            let x = try a.tensor(name), y = try m.tensor(name)
            XCTAssertEqual(x.dtype, y.dtype, "\(label) \(name)", file: file, line: line)
            XCTAssertTrue(x.bytes() == y.bytes(), "\(label): \(name) differs", file: file, line: line)
        }
    }

    static func records(_ folder: String) throws -> [String: SparseRecord] {
        Dictionary(try SparseFormat.records(of: Checkpoint(path: folder)), uniquingKeysWith: { a, _ in a })
    }

    func testSparseThenApplyIsTheMergedOutputForEveryMethodDTypeAndThreadCount() throws {
        for dtype in [DType.bf16, .f16, .f32] {
            let fixture = try PipelineFixture(dtype: dtype)
            defer { fixture.remove() }
            let statistics = try Self.statistics(fixture)
            for (method, settings) in Self.methods {
                let plugin = try PipelineFixture.plugin(method)
                let label = "\(method) \(dtype.name)"
                try Self.prune(fixture, plugin, settings, out: "merged-" + method, sparse: nil, calibration: statistics)
                var shards: [String: Data]?
                for threads in [1, 3] {
                    Parallel.threads = threads
                    // Fresh folders: replacing one needs RENAME_EXCHANGE, which not every file system has.
                    let sparse = "sparse-\(method)-\(threads)", applied = "applied-\(method)-\(threads)"
                    try Self.prune(fixture, plugin, settings, out: sparse, sparse: SparseOptions(), calibration: statistics)
                    let files = try fixture.files(sparse)
                    if let shards { XCTAssertEqual(files, shards, "\(label): the sparse delta depends on the thread count") }
                    shards = files
                    try Applier(basePath: fixture.base, deltaPath: fixture.folder + "/" + sparse, outputPath: fixture.folder + "/" + applied).run()
                    try Self.assertSameTensors(fixture.folder + "/" + applied, fixture.folder + "/merged-" + method, "\(label), \(threads) threads")
                }
                let records = try Self.records(fixture.folder + "/sparse-\(method)-1")
                for name in PipelineFixture.prunable {
                    let encoding = try XCTUnwrap(records[name], "\(label) \(name)").encoding
                    let seeded = ["dare", "darex_q", "structural"].contains(method)
                    XCTAssertEqual(encoding == .philox, seeded, "\(label) \(name): \(encoding)")
                }
                for name in PipelineFixture.kept { XCTAssertEqual(records[name]?.encoding, .dense, "\(label) \(name)") }
            }
        }
    }

    func testKeptTensorsAsChangesFromTheBaseStillRebuildTheMergedOutput() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let plugin = try PipelineFixture.plugin("magnitude")
        try Self.prune(fixture, plugin, ["rate=0.9"], out: "merged", sparse: nil, dtype: .f32)
        try Self.prune(fixture, plugin, ["rate=0.9"], out: "sparse", sparse: SparseOptions(kept: .delta), dtype: .f32)
        try Applier(basePath: fixture.base, deltaPath: fixture.folder + "/sparse", outputPath: fixture.folder + "/applied").run()
        try Self.assertSameTensors(fixture.folder + "/applied", fixture.folder + "/merged", "kept as delta, --dtype f32")
        let records = try Self.records(fixture.folder + "/sparse")
        // Every kept entry changed: the smallest code of "all positions" is the dense tensor.
        for name in PipelineFixture.kept { XCTAssertEqual(records[name]?.encoding, .dense, name) }
    }

    /// Two masks drawn, one used: the one whose regenerated positions cover every change is recorded.
    func testOfTwoDrawnMasksTheOneThatCoversTheChangesAddressesThePositions() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let source = """
        return { name = "inverted", version = "1", api = 2, summary = "keeps what DARE drops",
          prune = function(delta, ctx)
            local drop = ctx.rng:bernoulli(ctx.params.rate)
            return delta * ctx.rng:bernoulli(1 - ctx.params.rate) * 0 + delta * drop * 2
          end }
        """
        let path = fixture.folder + "/inverted.lua"
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        let plugin = try Plugin(path: path)
        try Self.prune(fixture, plugin, ["rate=0.9"], out: "merged", sparse: nil)
        try Self.prune(fixture, plugin, ["rate=0.9"], out: "sparse", sparse: SparseOptions())
        try Applier(basePath: fixture.base, deltaPath: fixture.folder + "/sparse", outputPath: fixture.folder + "/applied").run()
        try Self.assertSameTensors(fixture.folder + "/applied", fixture.folder + "/merged", "inverted mask")
        let records = try Self.records(fixture.folder + "/sparse")
        for name in PipelineFixture.prunable {
            let record = try XCTUnwrap(records[name])
            // The mask drawn with keep = rate (0.9 of the entries) covers every change: seeded is right and smaller
            // than 90% stored positions would be, so it must be that one, with the rate's threshold.
            XCTAssertEqual(record.encoding, .philox, name)
            XCTAssertEqual(record.mask?.threshold, try bernoulliThreshold(keep: 0.9), name)
        }
    }

    /// A plugin that keeps the complement of the mask it drew: the draw is recorded but
    /// does not cover the changes, so positions must be stored, and apply is still exact.
    func testAComplementOfTheDrawnMaskIsStoredAsPositions() throws {
        let fixture = try PipelineFixture(dtype: .f16)
        defer { fixture.remove() }
        let path = fixture.folder + "/complement.lua"
        try """
        return { name = "complement", version = "1", api = 2, summary = "keeps what a mask of keep = rate drops",
          prune = function(delta, ctx) return delta - delta * ctx.rng:bernoulli(ctx.params.rate) end }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let plugin = try Plugin(path: path)
        try Self.prune(fixture, plugin, ["rate=0.5"], out: "merged", sparse: nil)
        try Self.prune(fixture, plugin, ["rate=0.5"], out: "sparse", sparse: SparseOptions())
        try Applier(basePath: fixture.base, deltaPath: fixture.folder + "/sparse", outputPath: fixture.folder + "/applied").run()
        try Self.assertSameTensors(fixture.folder + "/applied", fixture.folder + "/merged", "complement")
        let records = try Self.records(fixture.folder + "/sparse")
        for name in PipelineFixture.prunable {
            XCTAssertTrue([.bitmap, .indices].contains(try XCTUnwrap(records[name]).encoding), name)
        }
    }

    /// At p = 0.99 DARE stores one value per kept entry and nothing else; magnitude adds
    /// about a byte of gap per value.
    func testSizesAtHighRates() throws {
        let fixture = try PipelineFixture(dtype: .bf16)
        defer { fixture.remove() }
        let prunedElements = try PipelineFixture.prunable.reduce(0) { $0 + (try fixture.finetunedTensor($1).count) }
        for (method, limit) in [("dare", 0.0115), ("magnitude", 0.025)] {
            try Self.prune(fixture, try PipelineFixture.plugin(method), ["rate=0.99"], out: method, sparse: SparseOptions())
            let sparse = try Checkpoint(path: fixture.folder + "/" + method)
            let bytes = sparse.names.filter { $0.contains("::") }.reduce(0) { $0 + (sparse.info($1)?.byteCount ?? 0) }
            let fraction = Double(bytes) / Double(prunedElements * 2)
            XCTAssertLessThan(fraction, limit, method)
            XCTAssertGreaterThan(fraction, 0.005, method)
        }
    }
}
