import LopperIO
import Foundation

/// Which pruning method suits a delta, following the decision flow of DAREx
/// (Deng et al. 2024, "DARE the Extreme", the method-selection flowchart, Fig. 4):
///
/// 1. Large deltas (large mean/variance): random drop-and-rescale fails, whatever the
///    rescale; importance-based pruning (magnitude, WANDA) wins. If re-fine-tuning is
///    possible, AdamR-L2 (DAREx-L2) shrinks the delta so that DARE works again.
/// 2. Small deltas at a high drop rate: DARE's rescale 1/(1-p) blows up the variance of
///    the output change; DAREx-q rescales by 1/q with q in (1-p, 1].
///    Very small deltas (what AdamR-L2 fine-tuning leaves: a fraction of a percent of |W|)
///    survive DARE's rescale even there: the darex_l2 plugin, with darex_q on top.
/// 3. Small deltas at a moderate rate: plain DARE (Yu et al. 2023).
public struct MethodRecommendation: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable {
        case importanceBased = "importance-based"
        case darexQ = "darex_q"
        case darexL2 = "darex_l2"
        case dare = "dare"
    }

    // Thresholds. Yu et al. (2023) find DARE holds for SFT deltas whose values stay within
    // a few thousandths and fails for continued-pre-training deltas an order larger; typical
    // LLM weights have mean |W| of 0.01-0.05, where SFT deltas are about 1% of |W|. We call
    // a delta large when either measure is clearly past that regime:

    /// Mean |D| / mean |W1| at or above this (10% of the weights' size) counts as large.
    public static let largeRelativeDelta = 0.1
    /// Mean |D| at or above this counts as large whatever the weights' scale.
    public static let largeAbsoluteDelta = 0.005
    /// Mean |D| / mean |W1| below this (0.5%) looks AdamR-L2-trained: the deltas the DAREx
    /// paper prunes with plain DARE at p = 0.99-0.999.
    public static let adamRRelativeDelta = 0.005
    /// Drop rates at or above this count as high (the DAREx paper's "extreme" regime
    /// starts at p = 0.9, where DARE's rescale is already 10x).
    public static let highRate = 0.9

    public var method: Method
    /// Reference plugins that implement the method.
    public var plugins: [String]
    public var rate: Double
    public var largeDeltas: Bool
    /// One paragraph with the figures that drove the choice.
    public var explanation: String

    public init(statistics: DeltaStatistics, rate: Double) {
        let total = statistics.total
        let relative = total.relativeSize, absolute = total.meanAbs
        let large = relative >= Self.largeRelativeDelta || absolute >= Self.largeAbsoluteDelta
        let largeLayers = statistics.layers.filter {
            $0.figures.relativeSize >= Self.largeRelativeDelta || $0.figures.meanAbs >= Self.largeAbsoluteDelta
        }.count
        let sizes = "mean |delta| = \(compactNumber(absolute)) is \(formatted(relative * 100, 2))% of mean |W| = "
            + "\(compactNumber(total.weightMeanAbs)) (std \(compactNumber(total.std)), max |delta| \(compactNumber(total.maxAbs)))"
        let limits = "large means >= \(formatted(Self.largeRelativeDelta * 100, 0))% of |W| or mean |delta| >= \(Self.largeAbsoluteDelta)"
        let layers = "\(largeLayers) of \(statistics.layers.count) layer rows are large"
        self.rate = rate
        largeDeltas = large
        if large {
            method = .importanceBased
            plugins = ["magnitude", "wanda"]
            explanation = "Recommendation: importance-based pruning (magnitude or wanda). The deltas are large: \(sizes); "
                + "\(limits); \(layers). Random drop-and-rescale (DARE, DAREx-q) fails when the delta has a large mean "
                + "and variance, and importance-based methods that keep the largest |delta| (or |delta| * ||x||) win there "
                + "(Deng et al. 2024, DAREx decision flow). If you can fine-tune again, AdamR-L2 (DAREx-L2: "
                + "`lopper finetune --optimizer adamr-l2`, then the darex_l2 plugin) keeps the delta small so that DARE works."
        } else if rate >= Self.highRate, relative < Self.adamRRelativeDelta {
            method = .darexL2
            plugins = ["darex_l2", "darex_q"]
            explanation = "Recommendation: darex_l2 (DARE for AdamR-trained deltas), or darex_q on top. The deltas are very "
                + "small (\(sizes); below \(formatted(Self.adamRRelativeDelta * 100, 1))% of |W|, as AdamR-L2 fine-tuning "
                + "leaves them; \(limits); \(layers)), so DARE's rescale 1/(1-p) = \(compactNumber(1 / (1 - rate))) at "
                + "p = \(formatted(rate, 3)) keeps the output close (Deng et al. 2024, DAREx-L2); darex_q with `--data` "
                + "can still gain a little by choosing the rescale."
        } else if rate >= Self.highRate {
            method = .darexQ
            plugins = ["darex_q"]
            explanation = "Recommendation: darex_q. The deltas are small (\(sizes); \(limits); \(layers)), so random "
                + "drops are safe (Yu et al. 2023), but the intended rate p = \(formatted(rate, 3)) is high (>= \(Self.highRate)): "
                + "DARE's rescale 1/(1-p) = \(compactNumber(1 / (1 - rate))) inflates the variance of the output change. "
                + "DAREx-q rescales by 1/q with q in (1-p, 1] chosen by the user, by grid search on calibration text, "
                + "per layer, or in closed form (Deng et al. 2024)."
        } else {
            method = .dare
            plugins = ["dare"]
            explanation = "Recommendation: dare. The deltas are small (\(sizes); \(limits); \(layers)) and the intended "
                + "rate p = \(formatted(rate, 3)) is below \(Self.highRate), where DARE's rescale 1/(1-p) = "
                + "\(compactNumber(1 / (1 - rate))) keeps the expected output and a modest variance (Yu et al. 2023; "
                + "Deng et al. 2024 switch to DAREx-q only at high rates)."
        }
    }
}
