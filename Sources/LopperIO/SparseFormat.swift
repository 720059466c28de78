import Foundation
import LopperCore

/// Lopper's sparse delta layout, version 1 (Docs/sparse-format.md is the specification;
/// Scripts/sparse_reader.py a reader in numpy). A checkpoint folder whose shards carry
/// `lopper.sparse.format` and, per output tensor, a record in `lopper.sparse.tensors`.
/// Every tensor is its base's tensor patched at some positions: the output's values there
/// are stored, in the output dtype, in element order; everywhere else the output is
/// `base + 0` rounded to the output dtype. Positions are a seeded Philox mask
/// (regenerated), LEB128 gaps, a bitmap, or all of them (`dense`, no base needed).
public enum SparseFormat {
    public static let version = "1"
    /// The stream and keep rule of `philox` positions (`Philox`, `KeepRule`).
    public static let maskRule = "philox4x32-10/bernoulli16/1"
    public static let formatKey = "lopper.sparse.format"
    public static let tensorsKey = "lopper.sparse.tensors"
    public static let valuesSuffix = "::values", indicesSuffix = "::indices", bitmapSuffix = "::bitmap"

    /// Whether a checkpoint is a sparse delta.
    public static func isSparse(_ checkpoint: Checkpoint) -> Bool {
        checkpoint.shards.first?.metadata[formatKey] != nil
    }

    /// The records of a sparse delta, by output tensor name, in output order.
    public static func records(of checkpoint: Checkpoint) throws -> [(String, SparseRecord)] {
        let path = checkpoint.path
        guard let metadata = checkpoint.shards.first?.metadata, let version = metadata[formatKey] else {
            throw SafetensorsError(path, "not a sparse delta (no \(formatKey) in __metadata__)")
        }
        guard version == Self.version else {
            throw SafetensorsError(path, "sparse format version \(version); this Lopper reads version \(Self.version)")
        }
        guard let text = metadata[tensorsKey], let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
            throw SafetensorsError(path, "\(tensorsKey) in __metadata__ is missing or not a JSON list of records")
        }
        return try list.map { item in
            guard let name = item["name"] as? String else { throw SafetensorsError(path, "a sparse record has no name") }
            do { return (name, try SparseRecord(json: item)) } catch { throw SafetensorsError(path, "tensor \"\(name)\": \(error)") }
        }
    }
}

/// How one output tensor is stored.
public struct SparseRecord: Equatable {
    public enum Encoding: String { case dense, philox, indices, bitmap }
    /// Which mask element decides tensor element `i` of shape `[r, c]`: `i`, `i / c` or `i % c`.
    public enum MaskMap: String { case element, rows, cols }

    /// A Bernoulli mask regenerated from Philox: the elements with a draw below `threshold / 2^32`.
    public struct Mask: Equatable {
        public var threshold: UInt64
        public var seed: UInt64
        public var streamHash: UInt64
        public var length: Int
        public var map: MaskMap
        public init(threshold: UInt64, seed: UInt64, streamHash: UInt64, length: Int, map: MaskMap) {
            self.threshold = threshold; self.seed = seed; self.streamHash = streamHash; self.length = length; self.map = map
        }
    }

    /// What the patched base tensor must be.
    public struct BaseIdentity: Equatable {
        public var dtype: DType
        public var shape: [Int]
        public var sampleHash: UInt64
        public init(dtype: DType, shape: [Int], sampleHash: UInt64) { self.dtype = dtype; self.shape = shape; self.sampleHash = sampleHash }
    }

    public var shape: [Int]
    public var dtype: DType
    public var encoding: Encoding
    /// Stored values.
    public var count: Int
    public var positionsChecksum: UInt64
    public var valuesChecksum: UInt64
    public var mask: Mask?
    public var base: BaseIdentity?

    public init(shape: [Int], dtype: DType, encoding: Encoding, count: Int, positionsChecksum: UInt64, valuesChecksum: UInt64,
                mask: Mask? = nil, base: BaseIdentity? = nil) {
        self.shape = shape; self.dtype = dtype; self.encoding = encoding; self.count = count
        self.positionsChecksum = positionsChecksum; self.valuesChecksum = valuesChecksum; self.mask = mask; self.base = base
    }

    /// The safetensors entry holding the values (the tensor's own name when dense).
    public func valuesName(_ name: String) -> String { encoding == .dense ? name : name + SparseFormat.valuesSuffix }

    public func json(name: String) -> [String: Any] {
        var object: [String: Any] = ["name": name, "shape": shape, "dtype": dtype.name, "encoding": encoding.rawValue,
                                     "count": count, "positions_checksum": hex(positionsChecksum), "values_checksum": hex(valuesChecksum)]
        if let mask {
            object["mask"] = ["rule": SparseFormat.maskRule, "threshold": mask.threshold, "seed": hex(mask.seed),
                              "stream_hash": hex(mask.streamHash), "length": mask.length, "map": mask.map.rawValue]
        }
        if let base { object["base"] = ["dtype": base.dtype.name, "shape": base.shape, "sample_hash": hex(base.sampleHash)] }
        return object
    }

    init(json object: [String: Any]) throws {
        func fail(_ why: String) -> SparseRecordError { SparseRecordError(why) }
        func int(_ value: Any?, _ key: String) throws -> Int {
            guard let number = value as? NSNumber, let exact = Int(exactly: number.doubleValue), exact >= 0 else { throw fail("bad \(key)") }
            return exact
        }
        func shape(_ value: Any?) throws -> [Int] {
            guard let items = value as? [Any], items.count <= 8 else { throw fail("bad shape") }
            let dims = try items.map { try int($0, "shape") }
            guard (try? Tensor.elementCount(dims)) != nil else { throw fail("shape \(dims) is too large") }
            return dims
        }
        func dtype(_ value: Any?) throws -> DType {
            guard let text = value as? String, let type = DType(parsing: text) else { throw fail("bad dtype") }
            return type
        }
        func word(_ value: Any?, _ key: String) throws -> UInt64 {
            guard let text = value as? String, text.count == 16, let number = UInt64(text, radix: 16) else { throw fail("bad \(key)") }
            return number
        }
        self.shape = try shape(object["shape"])
        self.dtype = try dtype(object["dtype"])
        guard let text = object["encoding"] as? String, let encoding = Encoding(rawValue: text) else { throw fail("unknown encoding") }
        self.encoding = encoding
        count = try int(object["count"], "count")
        positionsChecksum = try word(object["positions_checksum"], "positions_checksum")
        valuesChecksum = try word(object["values_checksum"], "values_checksum")
        if let mask = object["mask"] as? [String: Any] {
            guard mask["rule"] as? String == SparseFormat.maskRule else {
                throw fail("mask rule \(mask["rule"] as? String ?? "?") is not this Lopper's (\(SparseFormat.maskRule)); positions cannot be regenerated")
            }
            guard let map = (mask["map"] as? String).flatMap(MaskMap.init(rawValue:)) else { throw fail("bad mask map") }
            let threshold = try int(mask["threshold"], "threshold")
            guard threshold <= 1 << 32 else { throw fail("bad threshold") }
            self.mask = Mask(threshold: UInt64(threshold), seed: try word(mask["seed"], "seed"),
                             streamHash: try word(mask["stream_hash"], "stream_hash"), length: try int(mask["length"], "length"), map: map)
        } else if encoding == .philox {
            throw fail("philox encoding without a mask")
        }
        if let base = object["base"] as? [String: Any] {
            self.base = BaseIdentity(dtype: try dtype(base["dtype"]), shape: try shape(base["shape"]), sampleHash: try word(base["sample_hash"], "sample_hash"))
        } else if encoding != .dense {
            throw fail("\(encoding.rawValue) encoding without a base identity")
        }
    }
}

struct SparseRecordError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
