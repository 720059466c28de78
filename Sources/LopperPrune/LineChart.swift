import Foundation
import LopperIO

/// A self-contained SVG line chart: polylines with point markers, a linear or logarithmic x axis,
/// y from 0 (or a symmetric range when values go below 0) to a rounded maximum, ticks, labels, a
/// legend, and optional highlighted points. Hand-written so that the tool needs no plotting dependency.
public struct LineChart {
    public struct Series {
        public var label: String, color: String
        public var points: [(x: Double, y: Double)]
        public init(label: String, color: String, points: [(x: Double, y: Double)]) {
            self.label = label; self.color = color; self.points = points
        }
    }
    /// A point drawn larger, with a label beside it (e.g. DARE's point on a q curve).
    public struct Marker {
        public var label: String, color: String, x: Double, y: Double
        public init(label: String, color: String, x: Double, y: Double) { self.label = label; self.color = color; self.x = x; self.y = y }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    public var markers: [Marker] = []
    public var logX = false
    /// Fixed x ticks (e.g. layer names); nil: ticks chosen from the x range.
    public var xTicks: [(x: Double, label: String)]?

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    static let width = 760.0, height = 400.0
    static let left = 80.0, right = 170.0, top = 40.0, bottom = 60.0

    public func svg() -> String {
        let plotWidth = Self.width - Self.left - Self.right, plotHeight = Self.height - Self.top - Self.bottom
        let ys = (series.flatMap { $0.points.map(\.y) } + markers.map(\.y)).filter(\.isFinite)
        let largest = ys.map(Swift.abs).max() ?? 0
        let (step, ticks) = DeltaPlot.niceTicks(upTo: largest)
        let yMax = step * Double(ticks), yMin = (ys.min() ?? 0) < 0 ? -yMax : 0
        let xs = (series.flatMap { $0.points.map(\.x) } + markers.map(\.x)).filter { $0.isFinite && (!logX || $0 > 0) }
        let axis: (Double) -> Double = logX ? { Foundation.log10($0) } : { $0 }
        let xLow = xs.map(axis).min() ?? 0, xHigh = xs.map(axis).max() ?? 1
        func x(_ value: Double) -> Double {
            xHigh - xLow <= 0 ? Self.left + plotWidth / 2 : Self.left + plotWidth * (axis(value) - xLow) / (xHigh - xLow)
        }
        func y(_ value: Double) -> Double {
            let clipped = value.isFinite ? Swift.min(Swift.max(value, yMin), yMax) : yMax
            return Self.top + plotHeight * (1 - (clipped - yMin) / (yMax - yMin))
        }

        var out: [String] = []
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" "
                   + "viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" font-family=\"sans-serif\" font-size=\"12\">")
        out.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        out.append(text(Self.left + plotWidth / 2, 22, title, anchor: "middle", extra: " font-size=\"15\""))
        // Axes, then horizontal grid lines with value labels.
        let x0 = Self.left, y0 = Self.top + plotHeight
        out.append("<line x1=\"\(f(x0))\" y1=\"\(f(Self.top))\" x2=\"\(f(x0))\" y2=\"\(f(y0))\" stroke=\"black\"/>")
        out.append("<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x0 + plotWidth))\" y2=\"\(f(y0))\" stroke=\"black\"/>")
        for tick in (yMin < 0 ? -ticks : 0)...ticks {
            let value = step * Double(tick), ty = y(value)
            out.append("<line x1=\"\(f(x0 - 5))\" y1=\"\(f(ty))\" x2=\"\(f(x0 + plotWidth))\" y2=\"\(f(ty))\" stroke=\"#ddd\"/>")
            out.append(text(x0 - 8, ty + 4, value == 0 ? "0" : scientific(value), anchor: "end"))
        }
        for tick in xTicks ?? automaticXTicks(low: xLow, high: xHigh) {
            out.append("<line x1=\"\(f(x(tick.x)))\" y1=\"\(f(y0))\" x2=\"\(f(x(tick.x)))\" y2=\"\(f(y0 + 5))\" stroke=\"black\"/>")
            if !tick.label.isEmpty { out.append(text(x(tick.x), y0 + 18, tick.label, anchor: "middle")) }
        }
        out.append(text(x0 + plotWidth / 2, Self.height - 15, xLabel, anchor: "middle"))
        out.append(text(20, Self.top + plotHeight / 2, yLabel, anchor: "middle",
                        extra: " transform=\"rotate(-90 20 \(f(Self.top + plotHeight / 2)))\""))
        // One polyline per series, with point markers so that a single point still shows.
        for entry in series {
            let points = entry.points.filter { !logX || $0.x > 0 }.map { (f(x($0.x)), f(y($0.y))) }
            out.append("<polyline fill=\"none\" stroke=\"\(entry.color)\" stroke-width=\"2\" points=\"\(points.map { "\($0.0),\($0.1)" }.joined(separator: " "))\"/>")
            for point in points { out.append("<circle cx=\"\(point.0)\" cy=\"\(point.1)\" r=\"3\" fill=\"\(entry.color)\"/>") }
        }
        for marker in markers where !logX || marker.x > 0 {
            out.append("<circle cx=\"\(f(x(marker.x)))\" cy=\"\(f(y(marker.y)))\" r=\"6\" fill=\"none\" stroke=\"\(marker.color)\" stroke-width=\"2\"/>")
            out.append(text(x(marker.x) + 9, y(marker.y) - 8, marker.label, anchor: "start", extra: " fill=\"\(marker.color)\""))
        }
        // Legend to the right of the plot.
        let legendX = Self.left + plotWidth + 20
        for (index, entry) in series.enumerated() {
            let ly = Self.top + 10 + Double(index) * 22
            out.append("<line x1=\"\(f(legendX))\" y1=\"\(f(ly))\" x2=\"\(f(legendX + 24))\" y2=\"\(f(ly))\" stroke=\"\(entry.color)\" stroke-width=\"2\"/>")
            out.append(text(legendX + 30, ly + 4, entry.label, anchor: "start"))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Writes the SVG atomically (see `writeFileAtomically`): a reader never sees half a file.
    public func write(to path: String) throws {
        try writeFileAtomically(Data(svg().utf8), to: path)
    }

    /// Ticks over [low, high] in axis units: 1-2-5 steps, or 1, 2, 5 times powers of ten on a log axis.
    private func automaticXTicks(low: Double, high: Double) -> [(x: Double, label: String)] {
        guard high > low else { return [(logX ? Foundation.pow(10, low) : low, scientific(logX ? Foundation.pow(10, low) : low))] }
        if logX {
            var ticks: [(x: Double, label: String)] = []
            for power in Int(low.rounded(.down))...Int(high.rounded(.up)) {
                for m in [1.0, 2, 5] {
                    let value = m * Foundation.pow(10, Double(power)), position = Foundation.log10(value)
                    if position >= low - 1e-9, position <= high + 1e-9 { ticks.append((value, String(format: "%g", value))) }
                }
            }
            return ticks
        }
        let (step, count) = DeltaPlot.niceTicks(upTo: high - low)
        let start = (low / step).rounded(.down) * step
        return (0...count + 1).map { start + Double($0) * step }.filter { $0 >= low - 1e-9 && $0 <= high + 1e-9 }
            .map { ($0, scientific($0)) }
    }

    private func text(_ x: Double, _ y: Double, _ content: String, anchor: String, extra: String = "") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\"\(extra)>\(escaped(content))</text>"
    }

    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private func f(_ value: Double) -> String { formatted(value, 1) }
}
