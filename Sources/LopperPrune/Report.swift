import Foundation
import LopperIO

/// What happened to one tensor.
public struct TensorReport: Codable, Sendable {
    public var name: String
    public var shape: [Int]
    public var dtype: String
    /// `pruned`, or `kept` with `reason` (embedding, normalisation, output head, excluded, ...).
    public var action: String
    public var reason: String?
    public var layer: Int?
    /// The method's parameters resolved for this tensor.
    public var parameters: [String: ParamValue]?
    public var keptFraction: Double?
    public var rescale: Double?
    public var deltaMeanBefore: Double?
    public var deltaStdBefore: Double?
    public var deltaMeanAfter: Double?
    public var deltaStdAfter: Double?
    /// ||D' - D|| / ||D||, the relative L2 error of the pruned delta.
    public var relativeL2Error: Double?
    /// Figures a plugin added with `ctx.report(key, value)`.
    public var figures: [String: Double]
    public var notes: [String]

    public init(name: String, shape: [Int], dtype: String, action: String, reason: String? = nil, layer: Int? = nil) {
        self.name = name; self.shape = shape; self.dtype = dtype
        self.action = action; self.reason = reason; self.layer = layer
        figures = [:]; notes = []
    }
}

/// The run report: what `--report FILE` writes and the summary table prints.
public struct RunReport: Codable, Sendable {
    public var lopperVersion: String
    public var method: String
    public var methodVersion: String?
    public var parameters: [String: ParamValue]
    public var seed: UInt64
    public var output: String
    public var tensors: [TensorReport] = []
    public var seconds: Double = 0
    public var bytesRead: Int = 0
    public var bytesWritten: Int = 0
    /// How darex_q's q was chosen (a search's curve included), when the CLI chose it.
    public var qChoice: QChoice?

    public init(lopperVersion: String, method: String, parameters: [String: ParamValue], seed: UInt64, output: String) {
        self.lopperVersion = lopperVersion; self.method = method
        self.parameters = parameters; self.seed = seed; self.output = output
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }

    /// A readable table: one line per pruned tensor, then what was kept and why.
    public func summary(maxRows: Int = 40) -> String {
        var lines: [String] = []
        let pruned = tensors.filter { $0.action == "pruned" }
        let kept = tensors.filter { $0.action != "pruned" }
        let header = ["tensor", "kept", "rescale", "mean before", "mean after", "std before", "std after", "rel L2 err"]
        var rows: [[String]] = []
        for tensor in pruned.prefix(maxRows) {
            rows.append([tensor.name, percent(tensor.keptFraction), number(tensor.rescale),
                         number(tensor.deltaMeanBefore), number(tensor.deltaMeanAfter),
                         number(tensor.deltaStdBefore), number(tensor.deltaStdAfter), number(tensor.relativeL2Error)])
        }
        if pruned.count > maxRows { rows.append(["... \(pruned.count - maxRows) more (see --report)", "", "", "", "", "", "", ""]) }
        lines.append("method \(method), seed \(seed), output \(output); "
                     + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        lines.append(contentsOf: renderTable(header: header, rows: rows))
        let prunedElements = pruned.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let keptElements = pruned.reduce(0.0) { $0 + Double($1.shape.reduce(1, *)) * ($1.keptFraction ?? 1) }
        if prunedElements > 0 {
            lines.append("pruned \(pruned.count) tensors (\(prunedElements) parameters), kept "
                         + percent(keptElements / Double(prunedElements)) + " of their delta entries")
        }
        var reasons: [String: Int] = [:]
        for tensor in kept { reasons[tensor.reason ?? "kept", default: 0] += 1 }
        if !kept.isEmpty {
            lines.append("kept as fine-tuned: " + reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
        // The same note on many tensors is said once, with a count.
        var noted: [(note: String, tensors: [String])] = []
        for tensor in tensors {
            for note in tensor.notes {
                if let index = noted.firstIndex(where: { $0.note == note }) { noted[index].tensors.append(tensor.name) }
                else { noted.append((note, [tensor.name])) }
            }
        }
        for (note, names) in noted {
            lines.append(names.count == 1 ? "note: \(names[0]): \(note)" : "note: \(note) (\(names.count) tensors, e.g. \(names[0]))")
        }
        if seconds > 0 {
            let gigabytes = Double(bytesRead) / 1e9
            lines.append("read \(formatted(gigabytes, 2)) GB, wrote \(formatted(Double(bytesWritten) / 1e9, 2)) GB in \(formatted(seconds, 2)) s (\(formatted(gigabytes / seconds, 2)) GB/s of input)")
        }
        return lines.joined(separator: "\n")
    }

    private func percent(_ value: Double?) -> String {
        guard let value else { return "-" }
        return formatted(value * 100, value < 0.1 ? 2 : 1) + "%"
    }

    private func number(_ value: Double?) -> String {
        guard let value else { return "-" }
        if value == 0 { return "0" }
        let magnitude = Swift.abs(value)
        if magnitude >= 1e-3 && magnitude < 1e5 { return formatted(value, 4) }
        return scientific(value)
    }
}
