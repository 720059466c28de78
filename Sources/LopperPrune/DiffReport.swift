import LopperIO
import Foundation

/// What `lopper diff` prints: the statistics, the recommendation and where they came from.
public struct DiffReport: Codable, Sendable {
    public var base: String
    public var finetuned: String
    public var statistics: DeltaStatistics
    public var recommendation: MethodRecommendation
    /// The thresholds the recommendation used, so that a reader of the JSON can re-derive it.
    public var thresholds: [String: Double]

    public init(base: String, finetuned: String, statistics: DeltaStatistics, rate: Double) {
        self.base = base
        self.finetuned = finetuned
        self.statistics = statistics
        recommendation = MethodRecommendation(statistics: statistics, rate: rate)
        thresholds = [
            "largeRelativeDelta": MethodRecommendation.largeRelativeDelta,
            "largeAbsoluteDelta": MethodRecommendation.largeAbsoluteDelta,
            "highRate": MethodRecommendation.highRate,
        ]
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // |delta|/|W| is infinite when a selected tensor is all zeros in the fine-tuned model.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The per-layer table, the totals and the recommendation paragraph.
    public func text() -> String {
        let header = ["layer", "tensors", "params", "mean", "std", "mean |delta|", "max |delta|", "|delta|/|W|"]
        func row(_ name: String, _ tensors: Int, _ figures: DeltaFigures) -> [String] {
            [name, String(tensors), String(figures.count), compactNumber(figures.mean), compactNumber(figures.std),
             compactNumber(figures.meanAbs), compactNumber(figures.maxAbs), percent(figures.relativeSize)]
        }
        var lines = ["delta = \(finetuned) - \(base)"]
        lines.append(contentsOf: renderTable(header: header, rows: statistics.layers.map { row($0.name, $0.tensors, $0.figures) }))
        let total = statistics.total
        lines.append("total: \(statistics.tensors.count) tensors, \(total.count) parameters; mean \(compactNumber(total.mean)), "
                     + "std \(compactNumber(total.std)), mean |delta| \(compactNumber(total.meanAbs)), max |delta| "
                     + "\(compactNumber(total.maxAbs)), L2 \(compactNumber(total.l2)), mean |W| \(compactNumber(total.weightMeanAbs)), "
                     + "|delta|/|W| \(percent(total.relativeSize))")
        if statistics.keptTensors > 0 {
            lines.append("not compared: \(statistics.keptTensors) tensors a method keeps as fine-tuned (embeddings, norms, heads, excluded)")
        }
        lines.append("")
        lines.append(recommendation.explanation)
        return lines.joined(separator: "\n")
    }

    private func percent(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        return formatted(value * 100, value < 0.001 ? 4 : 2) + "%"
    }
}
