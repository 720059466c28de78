/// A dense, contiguous, row-major tensor.
///
/// A tensor is a shape, a dtype and a window of bytes in a `Storage`: either its own
/// 64-byte-aligned heap buffer or a zero-copy view into a mapped safetensors file.
/// Tensors are reference types so that Lua userdata and Swift can share one without
/// copying; views into files are read-only (`isWritable` is false).
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let dtype: DType
    public let storage: Storage
    public let byteOffset: Int
    /// Number of elements (1 for a scalar, 0 when any dimension is 0).
    public let count: Int

    /// A zero-filled tensor in its own aligned buffer.
    public init(zeros shape: [Int], dtype: DType = .f32) throws {
        let count = try Tensor.elementCount(shape)
        self.shape = shape
        self.dtype = dtype
        self.count = count
        storage = try Storage(byteCount: try Tensor.byteCount(count, dtype))
        byteOffset = 0
    }

    /// A tensor whose bytes are not initialised: for kernels that write every element.
    public init(uninitialized shape: [Int], dtype: DType = .f32) throws {
        let count = try Tensor.elementCount(shape)
        self.shape = shape
        self.dtype = dtype
        self.count = count
        storage = try Storage(byteCount: try Tensor.byteCount(count, dtype), zeroed: false)
        byteOffset = 0
    }

    /// A view of `shape` x `dtype` at `byteOffset` within `storage` (no copy).
    public init(view storage: Storage, byteOffset: Int, shape: [Int], dtype: DType) throws {
        let count = try Tensor.elementCount(shape)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, byteOffset >= 0, byteOffset <= storage.byteCount,
              bytes <= storage.byteCount - byteOffset else {
            throw TensorError.invalid("view of \(shape.shapeText) \(dtype) at byte \(byteOffset) runs past its storage of \(storage.byteCount) bytes")
        }
        self.shape = shape
        self.dtype = dtype
        self.count = count
        self.storage = storage
        self.byteOffset = byteOffset
    }

    /// A tensor holding `values`, stored as `dtype` (rounded to nearest even). The values
    /// are in memory already, so this copy is not checked for allocation failure: code
    /// that sizes a tensor from input uses the throwing initialisers.
    public convenience init(_ values: [Float], shape: [Int]? = nil, dtype: DType = .f32) {
        let shape = shape ?? [values.count]
        try! self.init(zeros: shape, dtype: dtype)
        precondition(count == values.count, "\(values.count) values for shape \(shape.shapeText)")
        values.withUnsafeBufferPointer { source in
            for index in 0..<count { storeScalar(source[index], at: index) }
        }
    }

    public var rank: Int { shape.count }
    public var byteCount: Int { count * dtype.byteSize }
    public var isWritable: Bool { !storage.isMapped }
    /// First byte of this tensor's data.
    public var data: UnsafeMutableRawPointer { storage.bytes.advanced(by: byteOffset) }

    /// Rows and columns of a 2-D tensor (a 1-D tensor is one row).
    public var matrixShape: (rows: Int, cols: Int)? {
        switch rank {
        case 1: return (1, shape[0])
        case 2: return (shape[0], shape[1])
        default: return nil
        }
    }

    /// Elements widened to Float (scalar path; for tests, printing and small tensors).
    public func floats() -> [Float] {
        (0..<count).map { loadScalar(at: $0) }
    }

    /// A deep copy in its own heap buffer.
    public func clone() throws -> Tensor {
        let copy = try Tensor(zeros: shape, dtype: dtype)
        copy.data.copyMemory(from: data, byteCount: byteCount)
        return copy
    }

    /// Same bytes, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let newCount = try Tensor.elementCount(newShape)
        guard newCount == count else {
            throw TensorError.shapeMismatch("reshape", shape, newShape)
        }
        return try Tensor(view: storage, byteOffset: byteOffset, shape: newShape, dtype: dtype)
    }

    /// Element count of `shape`, refusing negative dimensions and overflow.
    /// `count` elements of `dtype` in bytes, overflow-checked.
    public static func byteCount(_ count: Int, _ dtype: DType) throws -> Int {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw TensorError.invalid("\(count) elements of \(dtype) overflow") }
        return bytes
    }

    public static func elementCount(_ shape: [Int]) throws -> Int {
        var total = 1
        for dimension in shape {
            guard dimension >= 0 else { throw TensorError.invalid("negative dimension in shape \(shape.shapeText)") }
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw TensorError.invalid("shape \(shape.shapeText) overflows") }
            total = product
        }
        return total
    }

    /// Element `index` widened to Float. Computable dtypes and integers only.
    public func loadScalar(at index: Int) -> Float {
        let p = data
        switch dtype {
        case .f32: return p.load(fromByteOffset: index * 4, as: Float.self)
        case .f64: return Float(p.load(fromByteOffset: index * 8, as: Double.self))
        case .bf16: return bf16ToFloat(p.load(fromByteOffset: index * 2, as: UInt16.self))
        case .f16: return f16ToFloat(p.load(fromByteOffset: index * 2, as: UInt16.self))
        case .bool, .u8: return Float(p.load(fromByteOffset: index, as: UInt8.self))
        case .i8: return Float(p.load(fromByteOffset: index, as: Int8.self))
        case .i16: return Float(p.load(fromByteOffset: index * 2, as: Int16.self))
        case .u16: return Float(p.load(fromByteOffset: index * 2, as: UInt16.self))
        case .i32: return Float(p.load(fromByteOffset: index * 4, as: Int32.self))
        case .u32: return Float(p.load(fromByteOffset: index * 4, as: UInt32.self))
        case .i64: return Float(p.load(fromByteOffset: index * 8, as: Int64.self))
        case .u64: return Float(p.load(fromByteOffset: index * 8, as: UInt64.self))
        case .f8e5m2, .f8e4m3, .f8e8m0, .c64: return .nan
        }
    }

    /// Stores `value` at element `index`, rounding to the dtype (nearest even for floats).
    public func storeScalar(_ value: Float, at index: Int) {
        precondition(isWritable, "tensor is a read-only file view")
        let p = data
        switch dtype {
        case .f32: p.storeBytes(of: value, toByteOffset: index * 4, as: Float.self)
        case .f64: p.storeBytes(of: Double(value), toByteOffset: index * 8, as: Double.self)
        case .bf16: p.storeBytes(of: floatToBF16(value), toByteOffset: index * 2, as: UInt16.self)
        case .f16: p.storeBytes(of: floatToF16(value), toByteOffset: index * 2, as: UInt16.self)
        case .bool: p.storeBytes(of: value != 0 ? 1 : 0, toByteOffset: index, as: UInt8.self)
        case .u8: p.storeBytes(of: UInt8(clamping: Int(value.rounded())), toByteOffset: index, as: UInt8.self)
        case .i8: p.storeBytes(of: Int8(clamping: Int(value.rounded())), toByteOffset: index, as: Int8.self)
        case .i16: p.storeBytes(of: Int16(clamping: Int(value.rounded())), toByteOffset: index * 2, as: Int16.self)
        case .u16: p.storeBytes(of: UInt16(clamping: Int(value.rounded())), toByteOffset: index * 2, as: UInt16.self)
        case .i32: p.storeBytes(of: Int32(clamping: Int(value.rounded())), toByteOffset: index * 4, as: Int32.self)
        case .u32: p.storeBytes(of: UInt32(clamping: Int(value.rounded())), toByteOffset: index * 4, as: UInt32.self)
        case .i64: p.storeBytes(of: Int64(value), toByteOffset: index * 8, as: Int64.self)
        case .u64: p.storeBytes(of: UInt64(max(0, value)), toByteOffset: index * 8, as: UInt64.self)
        case .f8e5m2, .f8e4m3, .f8e8m0, .c64: preconditionFailure("cannot store into \(dtype)")
        }
    }
}

/// Errors from tensor operations; messages name the operation and the shapes.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(String, [Int], [Int])
    case unsupportedDType(String, DType)
    case invalid(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let op, let a, let b): return "\(op): shape \(a.shapeText) vs \(b.shapeText)"
        case .unsupportedDType(let op, let dtype): return "\(op): dtype \(dtype) is not supported (use F32, F16, BF16 or F64)"
        case .invalid(let message): return message
        }
    }
}

extension Array where Element == Int {
    /// `[4096,11008]`
    public var shapeText: String { "[" + map(String.init).joined(separator: ",") + "]" }
}
