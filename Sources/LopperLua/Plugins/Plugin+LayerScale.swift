import LopperCore

// LiNeS, layer-increasing network scaling (Wang et al., 2024, "LiNeS: Post-training layer
// scaling prevents forgetting and enhances model merging", arXiv:2410.17146): the delta of
// layer l of L scaled by alpha + beta (l - 1) / (L - 1), so shallow layers stay near the
// pre-trained weights. The host owns it as `layer_scale`, a number or a per-layer schedule
// applied after any method to what it kept: `--set 'layer_scale=[alpha, alpha+beta]'` is
// LiNeS exactly (a two-point schedule is linear in the block index from 0 to L - 1).
// Tensors outside the blocks take the first value; tensors the selection keeps are not
// scaled. It stays fused: a lazy delta is multiplied before it is evaluated, a score
// plugin's kept entries take it with their rescale, and at rate 0 the whole delta takes it.
extension Plugin {
    /// `delta` times the host's `layer_scale`, still lazy.
    func scaled(_ delta: LazyTensor, by scale: Double) throws -> LazyTensor {
        scale == 1 ? delta : try LazyTensor.binary(.mul, .lazy(delta), .scalar(Float(scale)))
    }
}
