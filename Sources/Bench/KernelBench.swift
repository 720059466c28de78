import LopperCore

/// Conversion, elementwise, reduction and selection kernels (filled in with the kernels).
func benchKernels(elements: Int) {}
