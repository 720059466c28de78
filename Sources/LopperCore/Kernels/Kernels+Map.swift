// The elementwise engine. A kernel is a small struct whose `apply` works on sixteen f32
// lanes; the engine specialises it for the operand dtypes. F32/BF16 operands are widened
// and narrowed in registers; other combinations go through L1-sized f32 blocks.

/// Elements per f32 block for mixed dtypes (three blocks fit in L1).
let kernelBlock = 2048

protocol UnaryKernel {
    func apply(_ x: SIMD16<Float>) -> SIMD16<Float>
}

protocol BinaryKernel {
    func apply(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float>
}

// MARK: - Checks

/// Throws unless `dtype` is one the kernels compute with.
@inline(__always)
func requireComputable(_ operation: String, _ dtypes: DType...) throws {
    for dtype in dtypes where !dtype.isComputable {
        throw TensorError.unsupportedDType(operation, dtype)
    }
}

/// Throws unless both tensors have the same shape.
@inline(__always)
func requireSameShape(_ operation: String, _ a: Tensor, _ b: Tensor) throws {
    guard a.shape == b.shape else { throw TensorError.shapeMismatch(operation, a.shape, b.shape) }
}

// MARK: - Unary

@inline(__always)
func unaryLoop<Input: FloatLanes, Output: FloatLanes, Kernel: UnaryKernel>(
    _: Input.Type, _: Output.Type, _ kernel: Kernel,
    _ source: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _ range: Range<Int>
) {
    var index = range.lowerBound
    let end = range.upperBound
    while index &+ 32 <= end {
        let first = kernel.apply(Input.load(source, index))
        let second = kernel.apply(Input.load(source, index &+ 16))
        Output.store(first, target, index)
        Output.store(second, target, index &+ 16)
        index &+= 32
    }
    while index &+ 16 <= end {
        Output.store(kernel.apply(Input.load(source, index)), target, index)
        index &+= 16
    }
    let live = end &- index
    if live > 0 {
        Output.storePartial(kernel.apply(Input.loadPartial(source, index, live: live)), target, index, live: live)
    }
}

@inline(__always)
func unaryChunks<Input: FloatLanes, Output: FloatLanes, Kernel: UnaryKernel>(
    _ input: Input.Type, _ output: Output.Type, _ kernel: Kernel,
    _ source: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _ count: Int
) {
    Parallel.forEachChunk(count: count) { range in
        unaryLoop(input, output, kernel, source, target, range)
    }
}

/// `kernel` applied to every element of `a`, written as `dtype`.
@inline(__always)
func mapUnary<Kernel: UnaryKernel>(_ operation: String, _ a: Tensor, dtype: DType, _ kernel: Kernel) throws -> Tensor {
    try requireComputable(operation, a.dtype, dtype)
    let result = try Tensor(uninitialized: a.shape, dtype: dtype)
    let source = UnsafeRawPointer(a.data), target = result.data, count = a.count
    switch (a.dtype, dtype) {
    case (.f32, .f32): unaryChunks(F32Lanes.self, F32Lanes.self, kernel, source, target, count)
    case (.bf16, .f32): unaryChunks(BF16Lanes.self, F32Lanes.self, kernel, source, target, count)
    case (.f32, .bf16): unaryChunks(F32Lanes.self, BF16Lanes.self, kernel, source, target, count)
    case (.bf16, .bf16): unaryChunks(BF16Lanes.self, BF16Lanes.self, kernel, source, target, count)
    default:
        let inputType = a.dtype, inputSize = a.dtype.byteSize, outputSize = dtype.byteSize
        Parallel.forEachChunk(count: count) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * kernelBlock) { scratch in
                let inputBlock = scratch.baseAddress!, outputBlock = inputBlock + kernelBlock
                var start = range.lowerBound
                while start < range.upperBound {
                    let length = Swift.min(kernelBlock, range.upperBound - start)
                    let x = widened(source, inputType, inputSize, start, length, into: inputBlock)
                    let y = dtype == .f32 ? target + start * 4 : UnsafeMutableRawPointer(outputBlock)
                    unaryLoop(F32Lanes.self, F32Lanes.self, kernel, x, y, 0..<length)
                    if dtype != .f32 {
                        storeFloats(outputBlock, into: target + start * outputSize, dtype: dtype, count: length)
                    }
                    start += length
                }
            }
        }
    }
    return result
}

/// Elements `start ..< start + length` as f32: in place for F32, else widened into `block`.
@inline(__always)
func widened(_ base: UnsafeRawPointer, _ dtype: DType, _ size: Int, _ start: Int, _ length: Int,
             into block: UnsafeMutablePointer<Float>) -> UnsafeRawPointer {
    if dtype == .f32 { return base + start * 4 }
    loadFloats(base + start * size, dtype: dtype, into: block, count: length)
    return UnsafeRawPointer(block)
}

// MARK: - Binary

@inline(__always)
func binaryLoop<A: FloatLanes, B: FloatLanes, Output: FloatLanes, Kernel: BinaryKernel>(
    _: A.Type, _: B.Type, _: Output.Type, _ kernel: Kernel,
    _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _ range: Range<Int>
) {
    var index = range.lowerBound
    let end = range.upperBound
    while index &+ 32 <= end {
        let first = kernel.apply(A.load(a, index), B.load(b, index))
        let second = kernel.apply(A.load(a, index &+ 16), B.load(b, index &+ 16))
        Output.store(first, target, index)
        Output.store(second, target, index &+ 16)
        index &+= 32
    }
    while index &+ 16 <= end {
        Output.store(kernel.apply(A.load(a, index), B.load(b, index)), target, index)
        index &+= 16
    }
    let live = end &- index
    if live > 0 {
        let value = kernel.apply(A.loadPartial(a, index, live: live), B.loadPartial(b, index, live: live))
        Output.storePartial(value, target, index, live: live)
    }
}

@inline(__always)
func binaryChunks<A: FloatLanes, B: FloatLanes, Output: FloatLanes, Kernel: BinaryKernel>(
    _ typeA: A.Type, _ typeB: B.Type, _ output: Output.Type, _ kernel: Kernel,
    _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _ count: Int
) {
    Parallel.forEachChunk(count: count) { range in
        binaryLoop(typeA, typeB, output, kernel, a, b, target, range)
    }
}

/// `kernel(a[i], b[i])` for every element, written as `dtype`.
@inline(__always)
func mapBinary<Kernel: BinaryKernel>(_ operation: String, _ a: Tensor, _ b: Tensor, dtype: DType, _ kernel: Kernel) throws -> Tensor {
    try requireComputable(operation, a.dtype, b.dtype, dtype)
    try requireSameShape(operation, a, b)
    let result = try Tensor(uninitialized: a.shape, dtype: dtype)
    let x = UnsafeRawPointer(a.data), y = UnsafeRawPointer(b.data), target = result.data, count = a.count
    switch (a.dtype, b.dtype, dtype) {
    case (.f32, .f32, .f32): binaryChunks(F32Lanes.self, F32Lanes.self, F32Lanes.self, kernel, x, y, target, count)
    case (.bf16, .bf16, .f32): binaryChunks(BF16Lanes.self, BF16Lanes.self, F32Lanes.self, kernel, x, y, target, count)
    case (.bf16, .bf16, .bf16): binaryChunks(BF16Lanes.self, BF16Lanes.self, BF16Lanes.self, kernel, x, y, target, count)
    case (.f32, .f32, .bf16): binaryChunks(F32Lanes.self, F32Lanes.self, BF16Lanes.self, kernel, x, y, target, count)
    case (.bf16, .f32, .f32): binaryChunks(BF16Lanes.self, F32Lanes.self, F32Lanes.self, kernel, x, y, target, count)
    case (.f32, .bf16, .f32): binaryChunks(F32Lanes.self, BF16Lanes.self, F32Lanes.self, kernel, x, y, target, count)
    case (.bf16, .f32, .bf16): binaryChunks(BF16Lanes.self, F32Lanes.self, BF16Lanes.self, kernel, x, y, target, count)
    case (.f32, .bf16, .bf16): binaryChunks(F32Lanes.self, BF16Lanes.self, BF16Lanes.self, kernel, x, y, target, count)
    default:
        let typeA = a.dtype, typeB = b.dtype, sizeA = typeA.byteSize, sizeB = typeB.byteSize, outputSize = dtype.byteSize
        Parallel.forEachChunk(count: count) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * kernelBlock) { scratch in
                let blockA = scratch.baseAddress!, blockB = blockA + kernelBlock, blockOut = blockB + kernelBlock
                var start = range.lowerBound
                while start < range.upperBound {
                    let length = Swift.min(kernelBlock, range.upperBound - start)
                    let u = widened(x, typeA, sizeA, start, length, into: blockA)
                    let v = widened(y, typeB, sizeB, start, length, into: blockB)
                    let w = dtype == .f32 ? target + start * 4 : UnsafeMutableRawPointer(blockOut)
                    binaryLoop(F32Lanes.self, F32Lanes.self, F32Lanes.self, kernel, u, v, w, 0..<length)
                    if dtype != .f32 {
                        storeFloats(blockOut, into: target + start * outputSize, dtype: dtype, count: length)
                    }
                    start += length
                }
            }
        }
    }
    return result
}

// MARK: - Blocks

/// Calls `body(start, length, scratch)` for consecutive blocks of at most `kernelBlock`
/// elements of `0..<count`, chunk by chunk in parallel; `scratch` holds `buffers` f32
/// blocks private to the calling thread.
@inline(__always)
func forEachBlock(count: Int, buffers: Int, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
    Parallel.forEachChunk(count: count) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(1, buffers) * kernelBlock) { scratch in
            var start = range.lowerBound
            while start < range.upperBound {
                let length = Swift.min(kernelBlock, range.upperBound - start)
                body(start, length, scratch.baseAddress!)
                start += length
            }
        }
    }
}
