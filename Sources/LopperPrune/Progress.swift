import LopperIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr (tensors, bytes, ETA), redrawn at most ten times
/// a second; silent when stderr is not a terminal.
public final class Progress {
    private let totalTensors: Int
    private let totalBytes: Int
    private let started = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool

    public init(tensors: Int, bytes: Int, enabled: Bool = isatty(2) != 0) {
        totalTensors = tensors
        totalBytes = max(1, bytes)
        self.enabled = enabled
    }

    public func update(tensors done: Int, bytes: Int, current: String) {
        guard enabled else { return }
        let now = Date()
        guard done == totalTensors || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let fraction = min(1, Double(bytes) / Double(totalBytes))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let elapsed = now.timeIntervalSince(started)
        let eta = fraction > 0.01 ? "ETA \(Int((elapsed / fraction - elapsed).rounded()))s" : "ETA -"
        var name = current
        if name.count > 40 { name = "..." + name.suffix(37) }
        let line = "[\(bar)] \(done)/\(totalTensors) tensors, \(gigabytes(bytes))/\(gigabytes(totalBytes)) GB, \(eta)  \(name)"
        fputs("\r\u{1B}[K" + line, stderr)
    }

    public func finish() {
        guard enabled else { return }
        fputs("\r\u{1B}[K", stderr)
    }

    private func gigabytes(_ bytes: Int) -> String { formatted(Double(bytes) / 1e9, 2) }
}
