import Foundation

/// Choosing the DAREx-q rescale factor `q` in `(1-p, 1]` (Deng et al. 2024; notation of
/// DESIGN.md). With inputs `x`, row `i` of a delta contributes `c_ij = D_ij x_j`; without
/// calibration data `x = 1`. `S_i = sum_j c_ij`, `Q_i = sum_j c_ij^2`.
public enum DARExQ {
    /// Closed-form MSE-optimal q over a whole tensor: minimising
    /// `sum_i E[H_i^2] = sum_i (1-(1-p)/q)^2 S_i^2 + p(1-p) Q_i / q^2` over `1/q` gives
    /// `q* = (1-p) + p * sum Q_i / sum S_i^2`, clipped to 1. A derivation, not in the paper.
    public static func mseOptimal(p: Double, rowSums: [Double], rowSquares: [Double]) -> Double {
        guard p > 0 else { return 1 }
        let squaredSums = rowSums.reduce(0) { $0 + $1 * $1 }
        let squares = rowSquares.reduce(0, +)
        guard squaredSums > 0 else { return 1 }
        return Swift.min(1, (1 - p) + p * squares / squaredSums)
    }

    /// `Phi(p) = (1-2p) / log((1-p)/p)`, with its limit 1/2 at p = 1/2.
    public static func phi(_ p: Double) -> Double {
        if Swift.abs(p - 0.5) < 1e-9 { return 0.5 }
        return (1 - 2 * p) / Foundation.log((1 - p) / p)
    }

    /// The paper's per-row "analytical" q, as the official code (`analytical_resolve_new`) runs
    /// it: q walks `1-p, 1-p+0.001, ..., 0.998`; each row keeps the q with the smallest
    /// `|B_i(q)|`, `B_i(q) = eta (1-(1-p)/q) S_i + eta^2 Phi(p) Q_i / (4 q^2) + log(2/gamma)`
    /// (ties move to the larger q); a row whose bound stops decreasing is marked, and the walk ends
    /// once `stopFraction` of the rows are marked (outlier features would otherwise drag it on).
    /// The layer's q is the mean of the row q's. Returns both. (The official grid starts at
    /// floor(1000 (1-p)) / 1000; here it starts at the first step not below 1-p, so q >= 1-p.)
    public static func analytical(p: Double, eta: Double, gamma: Double = 0.05, stopFraction: Double = 0.8,
                                  rowSums: [Double], rowSquares: [Double]) -> (q: Double, rows: [Double]) {
        guard p > 0, p < 1, !rowSums.isEmpty else { return (1, rowSums.map { _ in 1 }) }
        let keep = 1 - p, factor = phi(p), constant = Foundation.log(2 / gamma)
        let first = Swift.max(1, Int((keep * 1000 - 1e-9).rounded(.up)))
        var rows = [Double](repeating: keep, count: rowSums.count)
        var best = [Double](repeating: 10_000, count: rowSums.count)
        var stopped = [Bool](repeating: false, count: rowSums.count), stoppedCount = 0
        var step = first
        while step < 999 {
            let q = Double(step) * 0.001
            for row in rowSums.indices {
                let bound = Swift.abs(eta * (1 - keep / q) * rowSums[row] + eta * eta * factor * rowSquares[row] / (4 * q * q) + constant)
                if bound >= best[row], !stopped[row] { stopped[row] = true; stoppedCount += 1 }
                if bound <= best[row] { best[row] = bound; rows[row] = q }
            }
            if Double(stoppedCount) >= stopFraction * Double(rowSums.count) { break }
            step += 1
        }
        return (rows.reduce(0, +) / Double(rows.count), rows)
    }
}
