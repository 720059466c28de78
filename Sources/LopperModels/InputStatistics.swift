import LopperCore
import LopperIO

/// Per input feature of every linear layer: the sum and the sum of squares of its
/// activations over all calibration tokens, gathered through `linearInputObserver`
/// in f64. Written as the statistics file `lopper prune --calibration` reads:
/// `NAME.input_mean` and `NAME.input_norm` (L2 norm over tokens), F32.
public final class InputStatistics {
    private var sums: [String: [Double]] = [:]
    private var squares: [String: [Double]] = [:]
    private var tokens: [String: Int] = [:]
    private var order: [String] = []

    public init() {}

    /// Adds the F32 activations `x` [tokens, in] seen by linear layer `name`.
    public func observe(_ name: String, _ x: Tensor) {
        guard x.rank == 2, x.dtype == .f32 else { return }
        let rows = x.shape[0], cols = x.shape[1]
        if sums[name] == nil {
            sums[name] = [Double](repeating: 0, count: cols)
            squares[name] = [Double](repeating: 0, count: cols)
            tokens[name] = 0
            order.append(name)
        }
        let values = x.data.assumingMemoryBound(to: Float.self)
        sums[name]!.withUnsafeMutableBufferPointer { sum in
            squares[name]!.withUnsafeMutableBufferPointer { square in
                for row in 0..<rows {
                    let line = values + row * cols
                    for column in 0..<cols {
                        let v = Double(line[column])
                        sum[column] += v
                        square[column] += v * v
                    }
                }
            }
        }
        tokens[name]! += rows
    }

    /// Linear layers seen, in the order the model first ran them.
    public var layers: [String] { order }

    public func inputMean(_ name: String) -> Tensor? {
        guard let sum = sums[name], let count = tokens[name], count > 0 else { return nil }
        return Tensor(sum.map { Float($0 / Double(count)) }, shape: [sum.count])
    }

    public func inputNorm(_ name: String) -> Tensor? {
        guard let square = squares[name] else { return nil }
        return Tensor(square.map { Float($0.squareRoot()) }, shape: [square.count])
    }

    /// Writes the statistics file with `metadata` (plus the token count).
    public func write(to path: String, metadata: [String: String]) throws {
        try CalibrationStatistics.write(order.map { ($0, inputMean($0), inputNorm($0)) }, tokens: tokens.values.max() ?? 0,
                                        to: path, metadata: metadata)
    }
}

/// Runs `model` over `text` once, recording the inputs of every linear layer.
public func calibrate(_ model: LanguageModel, on text: CalibrationText,
                      progress: ((Int, Int) -> Void)? = nil) throws -> InputStatistics {
    let statistics = InputStatistics()
    let previous = model.linearInputObserver
    model.linearInputObserver = { name, x in statistics.observe(name, x) }
    defer { model.linearInputObserver = previous }
    for (index, sequence) in text.sequences.enumerated() {
        _ = try model.forward([sequence])
        progress?(index + 1, text.sequences.count)
    }
    return statistics
}
