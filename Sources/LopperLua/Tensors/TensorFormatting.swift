import Foundation
import LopperCore
import LopperIO

/// Text for tensors: `tostring(t)` and `t:hist()`.
enum TensorFormatting {
    /// Tensors with at most this many elements print every value.
    static let fullPrintLimit = 16

    /// `Tensor[4096,11008] BF16 mean=1.2e-05 std=0.0031 min=-0.041 max=0.043`, or
    /// `Tensor[3] F32 {1, 2.5, -3}` for small tensors.
    static func describe(_ tensor: Tensor) -> String {
        let head = "Tensor\(tensor.shape.shapeText) \(tensor.dtype)"
        if tensor.count <= fullPrintLimit, tensor.dtype.isComputable || tensor.dtype == .bool || !tensor.dtype.isFloatingPoint {
            return head + " {" + tensor.floats().map(number).joined(separator: ", ") + "}"
        }
        if tensor.dtype == .bool, let ones = try? countNonZero(tensor) {
            return head + " \(ones) of \(tensor.count) set"
        }
        guard tensor.dtype.isComputable, let summary = try? stats(tensor) else { return head }
        var text = head + " mean=\(number(summary.mean)) std=\(number(summary.std)) min=\(number(Double(summary.min))) max=\(number(Double(summary.max)))"
        if summary.nanCount > 0 { text += " nan=\(summary.nanCount)" }
        return text
    }

    static func number(_ value: Float) -> String { number(Double(value)) }

    /// Four significant digits, integers without a fraction.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == value.rounded(), Swift.abs(value) < 1e15 { return String(Int64(value)) }
        return compactNumber(value)
    }

    /// A horizontal bar chart, one line per bin, bars drawn with eighth blocks:
    /// `[-0.04, -0.03)  ████▌                 1234`.
    static func histogramText(_ histogram: Histogram, width: Int = 40) -> String {
        let counts = histogram.counts
        guard !counts.isEmpty else { return "(empty histogram)" }
        let largest = max(1, counts.max() ?? 1)
        let step = (Double(histogram.upper) - Double(histogram.lower)) / Double(counts.count)
        let edges = (0...counts.count).map { number(Double(histogram.lower) + Double($0) * step) }
        let edgeWidth = edges.map(\.count).max() ?? 1
        let eighths = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var lines: [String] = []
        for (bin, count) in counts.enumerated() {
            let length = Double(count) / Double(largest) * Double(width)
            let whole = Int(length)
            let part = Int((length - Double(whole)) * 8)
            let bar = String(repeating: "█", count: whole) + eighths[part]
            let left = pad(edges[bin], edgeWidth), right = pad(edges[bin + 1], edgeWidth)
            let closing = bin == counts.count - 1 ? "]" : ")"
            lines.append("[\(left), \(right)\(closing) " + bar + String(repeating: " ", count: max(0, width + 1 - bar.count)) + " \(count)")
        }
        var notes: [String] = []
        if histogram.below > 0 { notes.append("\(histogram.below) below") }
        if histogram.above > 0 { notes.append("\(histogram.above) above") }
        if histogram.nan > 0 { notes.append("\(histogram.nan) NaN") }
        if !notes.isEmpty { lines.append("(" + notes.joined(separator: ", ") + ")") }
        return lines.joined(separator: "\n")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
