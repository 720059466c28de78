/// Element types, named as safetensors names them.
///
/// Every dtype can be described, listed and copied; the compute kernels read and
/// write `f32`, `f16`, `bf16` and `f64` (computing in f32), and masks are `bool`
/// (one byte per element, 0 or 1).
public enum DType: String, CaseIterable, Sendable, CustomStringConvertible {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case c64 = "C64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .c64, .i64, .u64: return 8
        }
    }

    /// The dtypes the compute kernels read and write.
    public var isComputable: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f8e8m0, .f16, .bf16, .f32, .f64, .c64: return true
        default: return false
        }
    }

    /// The safetensors name (`"BF16"`).
    public var name: String { rawValue }
    public var description: String { rawValue }

    /// Parses a safetensors name or a common alias (`bf16`, `float32`, `half`).
    public init?(parsing text: String) {
        if let exact = DType(rawValue: text) { self = exact; return }
        switch text.lowercased() {
        case "bool": self = .bool
        case "u8", "uint8": self = .u8
        case "i8", "int8": self = .i8
        case "i16", "int16": self = .i16
        case "u16", "uint16": self = .u16
        case "f16", "float16", "half", "fp16": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "i32", "int32": self = .i32
        case "u32", "uint32": self = .u32
        case "f32", "float32", "float", "fp32": self = .f32
        case "f64", "float64", "double", "fp64": self = .f64
        case "i64", "int64": self = .i64
        case "u64", "uint64": self = .u64
        default: return nil
        }
    }
}
