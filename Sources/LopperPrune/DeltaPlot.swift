import Foundation
import LopperIO

/// The chart of `lopper diff --svg`: per-layer mean |delta| and std over the layer rows (a `LineChart`).
public struct DeltaPlot {
    public var layers: [LayerDelta]
    public var title: String

    public init(layers: [LayerDelta], title: String = "Delta per layer") {
        self.layers = layers
        self.title = title
    }

    static let series: [(label: String, color: String, value: (DeltaFigures) -> Double)] = [
        ("mean |delta|", "#1f77b4", { $0.meanAbs }),
        ("std of delta", "#ff7f0e", { $0.std }),
    ]

    public var chart: LineChart {
        var chart = LineChart(title: title, xLabel: "layer", yLabel: "delta", series: Self.series.map { entry in
            LineChart.Series(label: entry.label, color: entry.color,
                             points: layers.enumerated().map { (Double($0.offset), entry.value($0.element.figures)) })
        })
        // Layer ticks: label at most ~20 so that long models stay readable.
        let labelEvery = Swift.max(1, (layers.count + 19) / 20)
        chart.xTicks = layers.enumerated().map { index, layer in
            (Double(index), index % labelEvery == 0 || index == layers.count - 1 ? layer.name : "")
        }
        return chart
    }

    public func svg() -> String { chart.svg() }

    /// Writes the SVG atomically (see `writeFileAtomically`): a reader never sees half a file.
    public func write(to path: String) throws { try chart.write(to: path) }

    /// A tick step of 1, 2 or 5 times a power of ten and the number of steps covering `maximum`.
    public static func niceTicks(upTo maximum: Double) -> (step: Double, count: Int) {
        guard maximum > 0, maximum.isFinite else { return (1, 1) }
        let raw = maximum / 5
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
        return (step, Swift.max(1, Int((maximum / step * (1 - 1e-9)).rounded(.up))))
    }
}
