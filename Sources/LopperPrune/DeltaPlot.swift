import Foundation
import LopperIO
#if canImport(Glibc)
import Glibc
#endif

/// A self-contained SVG line chart of per-layer mean |delta| and std: two polylines
/// over the layer rows, y from 0 to a rounded maximum, ticks, labels and a legend.
/// Hand-written so that the tool needs no plotting dependency.
public struct DeltaPlot {
    public var layers: [LayerDelta]
    public var title: String

    public init(layers: [LayerDelta], title: String = "Delta per layer") {
        self.layers = layers
        self.title = title
    }

    static let width = 760.0, height = 400.0
    static let left = 80.0, right = 170.0, top = 40.0, bottom = 60.0
    static let series: [(label: String, color: String, value: (DeltaFigures) -> Double)] = [
        ("mean |delta|", "#1f77b4", { $0.meanAbs }),
        ("std of delta", "#ff7f0e", { $0.std }),
    ]

    public func svg() -> String {
        let plotWidth = Self.width - Self.left - Self.right, plotHeight = Self.height - Self.top - Self.bottom
        let largest = layers.flatMap { layer in Self.series.map { $0.value(layer.figures) } }.filter(\.isFinite).max() ?? 0
        let (step, ticks) = Self.niceTicks(upTo: largest)
        let yMax = step * Double(ticks)
        func x(_ index: Int) -> Double {
            layers.count <= 1 ? Self.left + plotWidth / 2 : Self.left + plotWidth * Double(index) / Double(layers.count - 1)
        }
        func y(_ value: Double) -> Double { Self.top + plotHeight * (1 - (value.isFinite ? Swift.min(value, yMax) : yMax) / yMax) }

        var out: [String] = []
        out.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" "
                   + "viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" font-family=\"sans-serif\" font-size=\"12\">")
        out.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        out.append(text(Self.left + plotWidth / 2, 22, title, anchor: "middle", extra: " font-size=\"15\""))
        // Axes, then horizontal grid lines with value labels.
        let x0 = Self.left, y0 = Self.top + plotHeight
        out.append("<line x1=\"\(f(x0))\" y1=\"\(f(Self.top))\" x2=\"\(f(x0))\" y2=\"\(f(y0))\" stroke=\"black\"/>")
        out.append("<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x0 + plotWidth))\" y2=\"\(f(y0))\" stroke=\"black\"/>")
        for tick in 0...ticks {
            let value = step * Double(tick), ty = y(value)
            out.append("<line x1=\"\(f(x0 - 5))\" y1=\"\(f(ty))\" x2=\"\(f(x0 + plotWidth))\" y2=\"\(f(ty))\" stroke=\"#ddd\"/>")
            out.append(text(x0 - 8, ty + 4, value == 0 ? "0" : scientific(value), anchor: "end"))
        }
        // Layer ticks: label at most ~20 so that long models stay readable.
        let labelEvery = Swift.max(1, (layers.count + 19) / 20)
        for (index, layer) in layers.enumerated() {
            out.append("<line x1=\"\(f(x(index)))\" y1=\"\(f(y0))\" x2=\"\(f(x(index)))\" y2=\"\(f(y0 + 5))\" stroke=\"black\"/>")
            if index % labelEvery == 0 || index == layers.count - 1 {
                out.append(text(x(index), y0 + 18, layer.name, anchor: "middle"))
            }
        }
        out.append(text(x0 + plotWidth / 2, Self.height - 15, "layer", anchor: "middle"))
        out.append(text(20, Self.top + plotHeight / 2, "delta", anchor: "middle",
                        extra: " transform=\"rotate(-90 20 \(f(Self.top + plotHeight / 2)))\""))
        // One polyline per series, with point markers so that a single layer still shows.
        for entry in Self.series {
            let points = layers.enumerated().map { "\(f(x($0.offset))),\(f(y(entry.value($0.element.figures))))" }
            out.append("<polyline fill=\"none\" stroke=\"\(entry.color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>")
            for point in points {
                let xy = point.split(separator: ",")
                out.append("<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(entry.color)\"/>")
            }
        }
        // Legend to the right of the plot.
        let legendX = Self.left + plotWidth + 20
        for (index, entry) in Self.series.enumerated() {
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

    /// A tick step of 1, 2 or 5 times a power of ten and the number of steps covering `maximum`.
    public static func niceTicks(upTo maximum: Double) -> (step: Double, count: Int) {
        guard maximum > 0, maximum.isFinite else { return (1, 1) }
        let raw = maximum / 5
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
        return (step, Swift.max(1, Int((maximum / step * (1 - 1e-9)).rounded(.up))))
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
