import LopperCore

/// Where one tensor lies in a safetensors file.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Offsets relative to the start of the data section.
    public var begin: Int
    public var end: Int
    public var byteCount: Int { end - begin }
    public var count: Int { shape.reduce(1, *) }
}

/// One line naming the file and the fault.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let fault: String
    public init(_ file: String, _ fault: String) { self.file = file; self.fault = fault }
    public var description: String { "\(file): \(fault)" }
}

/// A safetensors file, memory-mapped and validated as strictly as the reference
/// implementation: header size limits, strict JSON without duplicate names, known
/// dtypes, offsets that start at 0 and tile the data section exactly, sizes that
/// match dtype x shape (overflow-checked), and a string-to-string `__metadata__`.
/// Tensors are zero-copy views into the mapping.
public final class SafetensorsFile: @unchecked Sendable {
    /// The reference refuses headers above 100 MB.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    public let mapping: MappedFile
    /// Tensor names in header order.
    public let names: [String]
    public let metadata: [String: String]
    public let headerBytes: Int
    private let infos: [String: TensorInfo]

    public var dataOffset: Int { 8 + headerBytes }

    public convenience init(path: String) throws {
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch { throw SafetensorsError(path, "\(error)".replacingPrefix(path + ": ")) }
        try self.init(mapping: mapping)
    }

    public init(mapping: MappedFile) throws {
        let path = mapping.path
        self.path = path
        self.mapping = mapping
        func fail(_ fault: String) -> SafetensorsError { SafetensorsError(path, fault) }
        let size = mapping.length
        guard size >= 8 else { throw fail("file is \(size) bytes, too short for the 8-byte header length") }
        let declared = mapping.base.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(declared) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        let headerBytes = Int(declared)
        guard headerBytes <= size - 8 else {
            throw fail("header length \(headerBytes) runs past the end of the file (\(size) bytes)")
        }
        self.headerBytes = headerBytes
        let header: JSON
        do {
            header = try JSON.parse(UnsafeRawBufferPointer(start: mapping.base + 8, count: headerBytes))
        } catch {
            throw fail("header is not valid JSON: \(error)")
        }
        guard case .object(let members) = header else { throw fail("header is not a JSON object") }
        var metadata: [String: String] = [:]
        var infos: [TensorInfo] = []
        for (name, entry) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = entry else { throw fail("__metadata__ is not an object of strings") }
                for (key, value) in pairs {
                    guard case .string(let text) = value else { throw fail("__metadata__ value of \"\(key)\" is not a string") }
                    metadata[key] = text
                }
                continue
            }
            infos.append(try Self.parseEntry(name, entry, fail))
        }
        let dataBytes = size - 8 - headerBytes
        var cursor = 0
        for info in infos.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            if info.begin > cursor { throw fail("gap in data before tensor \"\(info.name)\": bytes \(cursor)..<\(info.begin) belong to no tensor") }
            if info.begin < cursor { throw fail("tensor \"\(info.name)\" overlaps the previous tensor (data_offsets begin \(info.begin) < \(cursor))") }
            cursor = info.end
        }
        if cursor > dataBytes { throw fail("tensor data runs past the end of the file: needs \(cursor) bytes, file has \(dataBytes) after the header") }
        if cursor < dataBytes { throw fail("\(dataBytes - cursor) trailing bytes after the last tensor") }
        names = infos.map(\.name)
        self.metadata = metadata
        self.infos = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) })
    }

    private static func parseEntry(_ name: String, _ entry: JSON, _ fail: (String) -> SafetensorsError) throws -> TensorInfo {
        guard case .object = entry else { throw fail("tensor \"\(name)\": entry is not an object") }
        guard case .string(let dtypeName)? = entry["dtype"] else { throw fail("tensor \"\(name)\": missing dtype") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("tensor \"\(name)\": unknown dtype \"\(dtypeName)\" (known: \(DType.allCases.map(\.name).joined(separator: ", ")))")
        }
        guard case .array(let dimensions)? = entry["shape"] else { throw fail("tensor \"\(name)\": missing shape") }
        let shape = try dimensions.map { value -> Int in
            guard let number = value.nonNegativeInteger else { throw fail("tensor \"\(name)\": shape \(JSON.array(dimensions).text) is not a list of non-negative integers") }
            return number
        }
        guard case .array(let offsets)? = entry["data_offsets"], offsets.count == 2,
              let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger, begin <= end else {
            throw fail("tensor \"\(name)\": data_offsets must be [begin, end] with 0 <= begin <= end")
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("tensor \"\(name)\": shape \(shape.shapeText) overflows") }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail("tensor \"\(name)\": shape \(shape.shapeText) x \(dtype) overflows") }
        guard end - begin == bytes else {
            throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape.shapeText) x \(dtype) needs \(bytes)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    public func info(_ name: String) -> TensorInfo? { infos[name] }

    /// A zero-copy, read-only view of tensor `name`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = infos[name] else { throw SafetensorsError(path, "no tensor named \"\(name)\"") }
        let storage = Storage(mapping: mapping, offset: dataOffset + info.begin, byteCount: info.byteCount)
        return try Tensor(view: storage, byteOffset: 0, shape: info.shape, dtype: info.dtype)
    }
}

extension JSON {
    var nonNegativeInteger: Int? {
        guard case .number(let value, let text) = self, value >= 0, value <= 9.0e15,
              value == value.rounded(), !text.contains("."), !text.lowercased().contains("e") else { return nil }
        return Int(text)
    }
}

extension String {
    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
