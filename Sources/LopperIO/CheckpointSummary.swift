import Foundation
import LopperCore

/// What `lopper inspect` prints: per tensor name, dtype, shape, size and shard;
/// totals by dtype; metadata. Built from headers alone.
public struct CheckpointSummary {
    public let checkpoint: Checkpoint

    public init(_ checkpoint: Checkpoint) { self.checkpoint = checkpoint }

    struct Row { let name: String; let dtype: DType; let shape: [Int]; let bytes: Int; let shard: String }

    var rows: [Row] {
        checkpoint.names.compactMap { name in
            guard let info = checkpoint.info(name), let shard = checkpoint.shard(of: name) else { return nil }
            return Row(name: name, dtype: info.dtype, shape: info.shape, bytes: info.byteCount,
                       shard: URL(fileURLWithPath: shard.path).lastPathComponent)
        }
    }

    /// `text()` prints names as `terminalSafe` shows them; JSON escapes them itself.
    private var printedRows: [Row] {
        rows.map { Row(name: terminalSafe($0.name), dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes, shard: terminalSafe($0.shard)) }
    }

    /// Totals by dtype: (dtype, tensors, parameters, bytes), largest first.
    var totals: [(DType, Int, Int, Int)] {
        var table: [DType: (Int, Int, Int)] = [:]
        for row in rows {
            let old = table[row.dtype] ?? (0, 0, 0)
            table[row.dtype] = (old.0 + 1, old.1 + row.shape.reduce(1, *), old.2 + row.bytes)
        }
        return table.map { ($0.key, $0.value.0, $0.value.1, $0.value.2) }.sorted { $0.3 > $1.3 }
    }

    var metadata: [String: String] {
        var merged: [String: String] = [:]
        for shard in checkpoint.shards { merged.merge(shard.metadata) { first, _ in first } }
        return merged
    }

    public func text() -> String {
        var lines: [String] = []
        let table = printedRows
        let widths = [max(6, table.map(\.name.count).max() ?? 0), 5, max(5, table.map { $0.shape.shapeText.count }.max() ?? 0), 10]
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return right ? fill + text : text + fill
        }
        lines.append([pad("tensor", widths[0]), pad("dtype", widths[1]), pad("shape", widths[2]), pad("size", widths[3], right: true), "shard"].joined(separator: "  "))
        for row in table {
            lines.append([pad(row.name, widths[0]), pad(row.dtype.name, widths[1]), pad(row.shape.shapeText, widths[2]),
                          pad(byteText(row.bytes), widths[3], right: true), row.shard].joined(separator: "  "))
        }
        lines.append("")
        for (dtype, tensors, parameters, bytes) in totals {
            lines.append("\(dtype.name): \(tensors) tensors, \(parameters) parameters, \(byteText(bytes))")
        }
        lines.append("total: \(table.count) tensors, \(table.reduce(0) { $0 + $1.shape.reduce(1, *) }) parameters, \(byteText(table.reduce(0) { $0 + $1.bytes })) in \(checkpoint.shards.count) shard(s)")
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("metadata \(terminalSafe(key)): \(terminalSafe(value))") }
        if !checkpoint.otherFiles.isEmpty { lines.append("other files: " + terminalSafe(checkpoint.otherFiles.joined(separator: ", "))) }
        if !checkpoint.skippedFiles.isEmpty { lines.append("skipped (not regular files): " + terminalSafe(checkpoint.skippedFiles.joined(separator: ", "))) }
        return lines.joined(separator: "\n")
    }

    public func json() -> String {
        let tensors = rows.map { row in
            JSON.object([("name", .string(row.name)), ("dtype", .string(row.dtype.name)), ("shape", .array(row.shape.map(JSON.int))),
                         ("bytes", .int(row.bytes)), ("shard", .string(row.shard))])
        }
        let totals = self.totals.map { dtype, tensors, parameters, bytes in
            (dtype.name, JSON.object([("tensors", .int(tensors)), ("parameters", .int(parameters)), ("bytes", .int(bytes))]))
        }
        return JSON.object([
            ("path", .string(checkpoint.path)),
            ("tensors", .array(tensors)),
            ("totals", .object(totals)),
            ("metadata", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) })),
            ("other_files", .array(checkpoint.otherFiles.map(JSON.string))),
        ]).text
    }
}
