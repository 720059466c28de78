import Foundation
import LopperIO

/// How `lopper prune --method darex_q` chose q, for the report and the output's metadata
/// (`lopper.q_choice`): the way (fixed, closed_form, search, analytical), and for searches the
/// objective, the grid, the seeds, the whole curve and DARE's point on it.
public struct QChoice: Codable, Sendable {
    public var how: String
    /// What was searched: "q" (global q) or "eta" (the analytical mode's eta); nil when nothing was.
    public var searched: String?
    public var metric: String?
    public var higherIsBetter: Bool?
    public var grid: QGridSearch.Grid?
    public var seeds: [UInt64]?
    public var dropOutlierSeed: Bool?
    public var result: QGridSearch.Result?
    /// The global q, when there is one.
    public var q: Double?
    public var eta: Double?
    /// Mean, least and largest per-tensor q (analytical mode).
    public var qMean: Double?, qMin: Double?, qMax: Double?
    /// The objective of the fine-tuned model itself, for scale.
    public var finetunedValue: Double?
    public var notes: [String] = []

    public init(how: String) { self.how = how }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The curve as a chart: objective over the searched value (log scale), DARE's point marked.
    public func chart(title: String) -> LineChart? {
        guard let result, let searched else { return nil }
        let label = metric ?? "objective"
        var chart = LineChart(title: title, xLabel: searched == "q" ? "q (log scale)" : "eta (log scale)", yLabel: label,
                              series: [.init(label: label, color: "#1f77b4", points: result.curve.map { ($0.q, $0.value) })])
        chart.logX = true
        chart.markers.append(.init(label: "best \(searched) = \(formatted(result.best.q, 4))", color: "#2ca02c",
                                   x: result.best.q, y: result.best.value))
        if let dare = result.dare {
            // DARE's point sits on a q curve; on an eta curve it is the reference at the left edge.
            let x = searched == "q" ? dare.q : (result.curve.first?.q ?? result.best.q)
            chart.markers.append(.init(label: "DARE (q = 1-p)", color: "#d62728", x: x, y: dare.value))
        }
        return chart
    }
}
