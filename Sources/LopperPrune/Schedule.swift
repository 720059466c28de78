/// A parameter value that may vary over layers, as mergekit users know it: one number,
/// or a list of numbers interpolated linearly across the layer indices
/// (`[0.9, 0.99]` goes from 0.9 at the first layer to 0.99 at the last).
public enum Schedule: Equatable, Sendable, CustomStringConvertible {
    case constant(Double)
    case gradient([Double])

    /// The value at `layer` of `layerCount` layers; tensors outside the blocks
    /// (no layer index) take the first value.
    public func value(layer: Int?, layerCount: Int) -> Double {
        switch self {
        case .constant(let value): return value
        case .gradient(let points):
            guard points.count > 1, let layer, layerCount > 1 else { return points.first ?? 0 }
            let position = Double(min(max(layer, 0), layerCount - 1)) / Double(layerCount - 1) * Double(points.count - 1)
            let lower = Int(position.rounded(.down))
            let upper = min(lower + 1, points.count - 1)
            let fraction = position - Double(lower)
            return points[lower] + (points[upper] - points[lower]) * fraction
        }
    }

    /// Parses `0.9` or `[0.9, 0.95, 0.99]`.
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace
        if trimmed.hasPrefix("["), trimmed.hasSuffix("]") {
            let items = trimmed.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false).map { Double(String($0).trimmingWhitespace) }
            guard !items.isEmpty, items.allSatisfy({ $0 != nil }) else { return nil }
            self = .gradient(items.map { $0! })
        } else if let value = Double(trimmed) {
            self = .constant(value)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .constant(let value): return "\(value)"
        case .gradient(let points): return "[" + points.map { "\($0)" }.joined(separator: ", ") + "]"
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
