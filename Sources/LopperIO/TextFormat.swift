import Foundation

// How numbers, sizes and tables read on a terminal: one formatter for each, used by every
// command, report and REPL line (strings pass through `terminalSafe`).

/// Columns padded to their widest cell; the first column left-aligned, others right.
public func renderTable(header: [String], rows: [[String]]) -> [String] {
    let all = ([header] + rows).map { $0.map(terminalSafe) }
    var widths = Array(repeating: 0, count: header.count)
    for row in all { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
    return all.enumerated().map { rowIndex, row in
        let cells = row.enumerated().map { index, cell -> String in
            let pad = String(repeating: " ", count: max(0, widths[index] - cell.count))
            return index == 0 ? cell + pad : pad + cell
        }
        let line = cells.joined(separator: "  ")
        return rowIndex == 0 ? line + "\n" + String(repeating: "-", count: line.count) : line
    }
}

/// `value` with `decimals` digits after the point.
public func formatted(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    return String(format: "%.\(decimals)f", value)
}

/// `1.23e-05`
public func scientific(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    return String(format: "%.3g", value)
}

/// Four significant digits (`0.01592`, `1.519e-06`, `100`): deltas span many orders of magnitude.
public func compactNumber(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    return value == 0 ? "0" : String(format: "%.4g", value)
}

/// `1.50 MiB`
public func byteText(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.2f %@", value, units[unit])
}
