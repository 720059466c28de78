import Foundation
import LopperCore

/// How the REPL shows a tensor: one summary line (shape, dtype, mean, std, min, max,
/// non-zero fraction) and, at the top level, the values of small tensors.
enum ReplFormatting {
    /// Tensors with at most this many elements print their values at the top level.
    static let fullLimit = 64

    static func summary(_ tensor: Tensor, full: Bool) -> String {
        var line = "Tensor\(tensor.shape.shapeText) \(tensor.dtype)"
        if tensor.count > 0, tensor.dtype.isComputable, let s = try? stats(tensor) {
            let n: (Double) -> String = TensorFormatting.number
            line += " mean=\(n(s.mean)) std=\(n(s.std)) min=\(n(Double(s.min))) max=\(n(Double(s.max)))"
            line += " nonzero=" + percent(s.nonZero, of: s.count)
            if s.nanCount > 0 { line += " nan=\(s.nanCount)" }
        } else if tensor.count > 0, tensor.dtype == .bool, let ones = try? countNonZero(tensor) {
            line += " set=\(ones) of \(tensor.count) (\(percent(ones, of: tensor.count)))"
        }
        guard full, tensor.count > 0, tensor.count <= fullLimit,
              tensor.dtype.isComputable || tensor.dtype == .bool else { return line }
        return line + "\n" + values(tensor)
    }

    static func percent(_ part: Int, of whole: Int) -> String {
        guard whole > 0 else { return "0%" }
        let value = 100 * Double(part) / Double(whole)
        if value == value.rounded() { return "\(Int(value))%" }
        return String(format: value < 1 || value > 99 ? "%.3g%%" : "%.1f%%", value)
    }

    /// `{1, 2, 3}`, or one row per line for a matrix: `{{1, 2},\n {3, 4}}`.
    static func values(_ tensor: Tensor) -> String {
        let numbers = tensor.floats().map { TensorFormatting.number($0) }
        guard tensor.shape.count == 2, tensor.shape[0] > 1 else {
            return "{" + numbers.joined(separator: ", ") + "}"
        }
        let columns = tensor.shape[1]
        let rows = stride(from: 0, to: numbers.count, by: max(1, columns)).map {
            "{" + numbers[$0..<min(numbers.count, $0 + columns)].joined(separator: ", ") + "}"
        }
        return "{" + rows.joined(separator: ",\n ") + "}"
    }
}
