import Foundation
import LopperCore
import LopperIO
import LopperPrune

/// DAREx-q's analytical mode as the paper and its code (`optimal_q_calculation`) run it, for a
/// whole model: for each pruned weight, `c_ij = D_ij * mean(x_j)` with its bias's delta as an
/// extra column (a bias sees the input 1); per row the bound of `DARExQ.analytical`; the
/// weight's q is the mean of its rows, its bias uses the weight's q, and any other pruned tensor
/// (no input statistics) the mean of the weights' q's.
public struct AnalyticalQ {
    /// Row sums S_i and squares Q_i of c per weight, and the weight's drop rate: independent of eta, computed once.
    private var moments: [(weight: String, rate: Double, sums: [Double], squares: [Double])] = []
    private var weightOfBias: [String: String] = [:]
    /// The pruned tensors, in checkpoint order.
    public let prunable: [String]
    /// Weights that had no input statistics (their q is the mean of the others').
    public private(set) var unobserved: [String] = []

    /// `rate` gives each tensor's drop rate; `inputMean` a weight's input means (nil: none recorded);
    /// pass nil for no statistics at all (inputs taken as 1).
    public init(base: Checkpoint, finetuned: Checkpoint, prunable: [String], rate: (String) throws -> Double,
                inputMean: ((String) throws -> Tensor?)?) throws {
        self.prunable = prunable
        let selected = Set(prunable)
        for name in prunable where (finetuned.info(name)?.shape.count ?? 0) == 2 {
            // One pair of tensors resident at a time: the mapped pages go once a weight is measured.
            defer { finetuned.releasePages(of: name); base.releasePages(of: name) }
            let weight = try finetuned.tensor(name), columns = weight.shape[1]
            var inputs: Tensor?
            if let inputMean {
                guard let mean = try inputMean(name) else { unobserved.append(name); continue }
                guard mean.count == columns else {
                    throw PruneError("\(name): input statistics have \(mean.count) features, the weight \(columns) inputs")
                }
                inputs = mean
            }
            var (sums, squares) = try deltaRowMoments(base: try base.tensor(name), finetuned: weight, columnWeights: inputs)
            if name.hasSuffix(".weight") {
                let bias = String(name.dropLast("weight".count)) + "bias"
                if selected.contains(bias), let info = finetuned.info(bias), info.shape == [weight.shape[0]] {
                    let column = try delta(try finetuned.tensor(bias), try base.tensor(bias)).floats()
                    finetuned.releasePages(of: bias); base.releasePages(of: bias)
                    for row in sums.indices { sums[row] += Double(column[row]); squares[row] += Double(column[row]) * Double(column[row]) }
                    weightOfBias[bias] = name
                }
            }
            moments.append((name, try rate(name), sums, squares))
        }
    }

    /// The same for the tensors `selection` prunes in a checkpoint pair (`rate` also gets the layer count).
    public init(basePath: String, finetunedPath: String, selection: TensorSelection, rate: (String) throws -> Double,
                inputMean: ((String) throws -> Tensor?)?) throws {
        let base = try Checkpoint(path: basePath), finetuned = try Checkpoint.finetuned(path: finetunedPath, base: base)
        let prunable = try finetuned.names.filter { try selection.decide($0, base: base, finetuned: finetuned).isPrune }
        try self.init(base: base, finetuned: finetuned, prunable: prunable, rate: rate, inputMean: inputMean)
    }

    /// q of every pruned tensor for `eta`.
    public func qs(eta: Double, gamma: Double = 0.05) -> [String: Double] {
        var table: [String: Double] = [:]
        for entry in moments {
            table[entry.weight] = DARExQ.analytical(p: entry.rate, eta: eta, gamma: gamma, rowSums: entry.sums, rowSquares: entry.squares).q
        }
        let mean = table.isEmpty ? 1 : table.values.reduce(0, +) / Double(table.count)
        for name in prunable where table[name] == nil { table[name] = weightOfBias[name].flatMap { table[$0] } ?? mean }
        return table
    }
}
