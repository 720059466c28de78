import LopperCore

/// Philox, Bernoulli masks and the fused DARE pass (filled in with the generator).
func benchRandom(elements: Int) {}
