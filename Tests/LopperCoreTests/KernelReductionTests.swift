import XCTest
import LopperCore

/// Reductions, axis reductions and histograms against scalar references in f64,
/// over every compute dtype and sizes with odd tails and several chunks.
final class KernelReductionTests: XCTestCase {
    static let sizes = [1, 7, 16, 17, 63, 1023, 4099, 70001, 140_007]

    /// Finite values only: NaN and infinity rules are checked by hand below.
    func finiteTensor(_ shape: [Int], _ dtype: DType, _ generator: inout SplitMix) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor((0..<count).map { _ in generator.unit() < 0.05 ? 0 : generator.float(in: -4...4) }, shape: shape, dtype: dtype)
    }

    func testWholeTensorReductionsMatchScalarReferences() throws {
        var generator = SplitMix(seed: 21)
        for size in Self.sizes {
            for dtype in KernelHarnessTests.computeTypes {
                let tensor = finiteTensor([size], dtype, &generator)
                let values = tensor.floats().map(Double.init)
                let n = Double(values.count)
                let total = values.reduce(0, +), meanValue = total / n
                let squares = values.reduce(0) { $0 + ($1 - meanValue) * ($1 - meanValue) }
                // The documented accuracy: f32 lanes add at most 64 values before each
                // block total goes to f64, so errors stay within 64 f32 roundings of the
                // magnitudes involved.
                let relative = 64 * Double(Float.ulpOfOne)
                let magnitude = values.reduce(0) { $0 + Swift.abs($1) }
                let secondMoment = values.reduce(0) { $0 + $1 * $1 }
                let what = "\(dtype) size \(size)"
                XCTAssertEqual(try sum(tensor), total, accuracy: relative * magnitude, what)
                XCTAssertEqual(try mean(tensor), meanValue, accuracy: relative * magnitude / n, what)
                XCTAssertEqual(try variance(tensor), squares / n, accuracy: relative * secondMoment / n, what)
                if size > 1 { XCTAssertEqual(try variance(tensor, correction: 1), squares / (n - 1), accuracy: relative * secondMoment / (n - 1), what) }
                XCTAssertEqual(try norm(tensor, p: 1), magnitude, accuracy: relative * magnitude, what)
                XCTAssertEqual(try norm(tensor, p: 2), secondMoment.squareRoot(), accuracy: relative * secondMoment.squareRoot(), what)
                XCTAssertEqual(try norm(tensor, p: .infinity), values.map(Swift.abs).max()!, what)
                let cubed = pow(values.reduce(0) { $0 + pow(Swift.abs($1), 3) }, 1.0 / 3)
                XCTAssertEqual(try norm(tensor, p: 3), cubed, accuracy: 1e-5 * cubed, what)
                XCTAssertEqual(Double(try min(tensor)), values.min()!, what)
                XCTAssertEqual(Double(try max(tensor)), values.max()!, what)
                XCTAssertEqual(try countNonZero(tensor), values.filter { $0 != 0 }.count, what)
                let summary = try stats(tensor)
                XCTAssertEqual(summary.count, size)
                XCTAssertEqual(summary.mean, meanValue, accuracy: relative * magnitude / n, what)
                XCTAssertEqual(summary.std, (squares / n).squareRoot(), accuracy: relative * (secondMoment / n).squareRoot(), what)
                XCTAssertEqual(summary.nonZero, values.filter { $0 != 0 }.count, what)
            }
        }
    }

    func testSpecialValuesAndEmptyTensors() throws {
        let withNaN = Tensor([1, .nan, -2, 0, -0.0])
        XCTAssertTrue(try sum(withNaN).isNaN)
        XCTAssertTrue(try max(withNaN).isNaN)
        XCTAssertTrue(try min(withNaN).isNaN)
        XCTAssertEqual(try countNonZero(withNaN), 3, "NaN counts, -0 does not")
        let summary = try stats(withNaN)
        XCTAssertEqual(summary.nanCount, 1)
        XCTAssertEqual(summary.mean, -0.25, accuracy: 1e-12, "NaN is skipped by stats")
        XCTAssertEqual(summary.min, -2)
        XCTAssertEqual(try sum(Tensor([.infinity, 1])), .infinity)
        let empty = try Tensor(zeros: [0])
        XCTAssertEqual(try sum(empty), 0)
        XCTAssertTrue(try mean(empty).isNaN)
        XCTAssertThrowsError(try max(empty))
        XCTAssertThrowsError(try norm(Tensor([1]), p: -1))
        // A large mean does not swallow the variance (two-pass / shifted sums).
        let shifted = Tensor((0..<10000).map { 1e4 + Float($0 % 2) })
        XCTAssertEqual(try variance(shifted), 0.25, accuracy: 1e-9)
        XCTAssertEqual(try stats(shifted).std, 0.5, accuracy: 1e-9)
    }

    func testRowAndColumnReductionsMatchScalarReferences() throws {
        var generator = SplitMix(seed: 22)
        let shapes = [[1, 1], [3, 17], [17, 3], [64, 65], [129, 1031], [1, 70001], [70001], [513, 2]]
        for shape in shapes {
            for dtype in KernelHarnessTests.computeTypes {
                let tensor = finiteTensor(shape, dtype, &generator)
                let values = tensor.floats().map(Double.init)
                let rows = shape.count == 2 ? shape[0] : 1, cols = shape.last!
                func row(_ i: Int) -> ArraySlice<Double> { values[i * cols ..< (i + 1) * cols] }
                func col(_ j: Int) -> [Double] { (0..<rows).map { values[$0 * cols + j] } }
                let what = "\(dtype) \(shape)"
                func absolute(_ xs: [Double]) -> Double { xs.reduce(0) { $0 + Swift.abs($1) } }
                let rowScale = (0..<rows).map { absolute(Array(row($0))) }, colScale = (0..<cols).map { absolute(col($0)) }
                let rowEnergy = (0..<rows).map { row($0).reduce(0) { $0 + $1 * $1 }.squareRoot() }
                let colEnergy = (0..<cols).map { col($0).reduce(0) { $0 + $1 * $1 }.squareRoot() }
                check(try rowSums(tensor), (0..<rows).map { row($0).reduce(0, +) }, rowScale, what + " rowSums")
                check(try rowNorms(tensor, p: 1), rowScale, rowScale, what + " rowNorms 1")
                check(try rowNorms(tensor), rowEnergy, rowEnergy, what + " rowNorms 2")
                check(try rowNorms(tensor, p: .infinity), (0..<rows).map { row($0).map(Swift.abs).max()! }, rowScale.map { _ in 0 }, what + " rowNorms inf")
                check(try colSums(tensor), (0..<cols).map { col($0).reduce(0, +) }, colScale, what + " colSums")
                check(try colNorms(tensor), colEnergy, colEnergy, what + " colNorms 2")
                check(try colNorms(tensor, p: .infinity), (0..<cols).map { col($0).map(Swift.abs).max()! }, colScale.map { _ in 0 }, what + " colNorms inf")
            }
        }
        XCTAssertThrowsError(try rowSums(Tensor(zeros: [2, 2, 2])))
    }

    func testHistogramMatchesTheDocumentedBinRule() throws {
        var generator = SplitMix(seed: 23)
        for size in [1, 17, 4099, 140_007] {
            for dtype in [DType.f32, .bf16] {
                var values = finiteTensor([size], dtype, &generator).floats()
                if size > 10 { values[3] = .nan; values[5] = .infinity; values[7] = -.infinity }
                let tensor = Tensor(values, dtype: dtype)
                for (bins, range) in [(1, nil), (10, nil), (64, Optional(Float(-1)...Float(2)))] as [(Int, ClosedRange<Float>?)] {
                    let got = try histogram(tensor, bins: bins, range: range)
                    let finite = tensor.floats().filter(\.isFinite)
                    let lower = range?.lowerBound ?? finite.min() ?? 0, upper = range?.upperBound ?? finite.max() ?? 0
                    let scale: Float = upper > lower ? Float(bins) / (upper - lower) : 0
                    var counts = [Int](repeating: 0, count: bins)
                    var below = 0, above = 0, nan = 0
                    for x in tensor.floats() {
                        if x.isNaN { nan += 1 } else if x < lower { below += 1 } else if x > upper { above += 1 }
                        else { counts[Swift.min(bins - 1, Int((x - lower) * scale))] += 1 }
                    }
                    let what = "\(dtype) size \(size) bins \(bins)"
                    XCTAssertEqual(got.counts, counts, what)
                    XCTAssertEqual([got.below, got.above, got.nan], [below, above, nan], what)
                    XCTAssertEqual(got.counts.reduce(0, +) + below + above + nan, size, what)
                }
            }
        }
        XCTAssertThrowsError(try histogram(Tensor([1]), bins: 0))
    }

    func testScaleRowsAndColumns() throws {
        var generator = SplitMix(seed: 24)
        for (rows, cols) in [(1, 1), (3, 17), (129, 1031), (70001, 2)] {
            for dtype in KernelHarnessTests.computeTypes {
                let tensor = finiteTensor([rows, cols], dtype, &generator)
                let rowFactors = finiteTensor([rows], .f32, &generator), colFactors = finiteTensor([cols], .f32, &generator)
                let values = tensor.floats(), r = rowFactors.floats(), c = colFactors.floats()
                let byRow = Tensor((0..<values.count).map { values[$0] * r[$0 / cols] }, shape: [rows, cols])
                let byCol = Tensor((0..<values.count).map { values[$0] * c[$0 % cols] }, shape: [rows, cols])
                assertSameValues(try scaleRows(tensor, rowFactors), byRow, "scaleRows \(dtype) [\(rows),\(cols)]")
                assertSameValues(try scaleCols(tensor, colFactors), byCol, "scaleCols \(dtype) [\(rows),\(cols)]")
            }
        }
        let mask = Tensor([1, 0, 1], dtype: .bool)
        XCTAssertEqual(try scaleRows(Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2]), mask).floats(), [1, 2, 0, 0, 5, 6])
        XCTAssertThrowsError(try scaleRows(Tensor(zeros: [3, 2]), Tensor(zeros: [2]))) { error in
            XCTAssertTrue("\(error)".contains("needs 3 factors"), "\(error)")
        }
    }

    func testDeltaComparisonMatchesAScalarReference() throws {
        var generator = SplitMix(seed: 25)
        for size in [1, 17, 4099, 140_007] {
            for dtype in [DType.f32, .bf16] {
                let base = finiteTensor([size], dtype, &generator), finetuned = finiteTensor([size], dtype, &generator)
                let keep = (0..<size).map { _ in generator.unit() < 0.3 }
                let b = base.floats().map(Double.init), f = finetuned.floats().map(Double.init)
                let before = zip(f, b).map { $0 - $1 }
                let after = zip(before, keep).map { $1 ? $0 * 2 : 0 }
                for merged in [true, false] {
                    let output = Tensor(zip(b, after).map { Float(merged ? $0 + $1 : $1) }, shape: [size], dtype: .f32)
                    let got = try compareDelta(base: base, finetuned: finetuned, output: output, isMerged: merged)
                    let written = output.floats().map(Double.init)
                    let pruned = merged ? zip(written, b).map { $0 - $1 } : written
                    XCTAssertEqual(got.count, size)
                    XCTAssertEqual(got.nonZeroBefore, before.filter { $0 != 0 }.count)
                    XCTAssertEqual(got.nonZeroAfter, pruned.filter { $0 != 0 }.count)
                    // The documented accuracy: f32 lanes add 256 values before each block goes to f64.
                    let relative = 256 * Double(Float.ulpOfOne)
                    let squaredError = zip(pruned, before).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    XCTAssertEqual(got.sumBefore, before.reduce(0, +), accuracy: relative * before.reduce(0) { $0 + Swift.abs($1) })
                    XCTAssertEqual(got.squaresAfter, pruned.reduce(0) { $0 + $1 * $1 }, accuracy: relative * pruned.reduce(0) { $0 + $1 * $1 })
                    XCTAssertEqual(got.squaredError, squaredError, accuracy: relative * squaredError + 1e-9)
                    XCTAssertEqual(got.nonFiniteBefore + got.nonFiniteAfter, 0)
                }
            }
        }
        let nan = try compareDelta(base: Tensor([0, 0]), finetuned: Tensor([.nan, 1]), output: Tensor([0, .infinity]), isMerged: false)
        XCTAssertEqual([nan.nonFiniteBefore, nan.nonFiniteAfter], [1, 1])
        XCTAssertEqual(try compareDelta(base: Tensor([1, 2]), finetuned: Tensor([3, 2]), output: Tensor([2, 2]), isMerged: true).relativeL2Error, 0.5)
    }

    /// F32 results of f64 (or 64-value f32 block) accumulation: within one F32 rounding
    /// of the result plus 64 f32 roundings of `scale` (the magnitudes summed).
    func testCountNonFiniteMatchesAScalarCount() throws {
        var generator = SplitMix(seed: 42)
        for dtype in KernelHarnessTests.computeTypes {
            for size in [0, 1, 15, 16, 1023, 1025, 70001] {
                let values = (0..<size).map { _ -> Float in
                    switch generator.int(below: 10) {
                    case 0: return .nan
                    case 1: return generator.int(below: 2) == 0 ? .infinity : -.infinity
                    case 2: return .greatestFiniteMagnitude
                    default: return generator.float(in: -3...3)
                    }
                }
                let tensor = Tensor(values, dtype: dtype), widened = tensor.floats()
                let counts = try countNonFinite(tensor)
                XCTAssertEqual(counts.nan, widened.filter(\.isNaN).count, "\(dtype) \(size)")
                XCTAssertEqual(counts.infinite, widened.filter(\.isInfinite).count, "\(dtype) \(size)")
            }
        }
    }

    /// A fused mask pass that measures as it writes gives exactly the figures of a separate
    /// `compareDelta` pass over its output: whole and partial blocks, chunk edges, NaN.
    func testMeasuredMaskPassEqualsACompareDeltaPass() throws {
        var generator = SplitMix(seed: 41)
        for (baseType, outType) in [(DType.bf16, DType.bf16), (.f32, .f32), (.f16, .bf16)] {
            for size in [5, 1024, 3000, 65536 + 2049] {
                var b = (0..<size).map { _ in generator.float(in: -2...2) }
                let f = b.map { $0 + generator.float(in: -0.01...0.01) }
                if size > 100 { b[77] = .nan; b[78] = .infinity }
                let base = Tensor(b, dtype: baseType), finetuned = Tensor(f, dtype: baseType)
                let mask = Tensor((0..<size).map { _ in Float(generator.int(below: 3) == 0 ? 1 : 0) }, dtype: .bool)
                for output in [DeltaOutput.merged, .delta] {
                    let (result, figures) = try fusedMaskMeasured(base: base, finetuned: finetuned, mask: mask, scale: 3,
                                                                  output: output, dtype: outType)
                    let reference = try compareDelta(base: base, finetuned: finetuned, output: result, isMerged: output == .merged)
                    XCTAssertEqual(figures, reference, "\(baseType)->\(outType) n=\(size) \(output)")
                    XCTAssertEqual(figures.nonFiniteBefore, size > 100 ? 2 : 0)
                }
            }
        }
    }

    func testDeltaRowMomentsMatchAScalarReference() throws {
        var generator = SplitMix(seed: 26)
        for (rows, cols) in [(1, 1), (3, 17), (129, 1031), (5, 3000), (70001, 2)] {
            for dtype in KernelHarnessTests.computeTypes {
                let base = finiteTensor([rows, cols], dtype, &generator), finetuned = finiteTensor([rows, cols], dtype, &generator)
                let weights = finiteTensor([cols], .f32, &generator)
                let b = base.floats().map(Double.init), f = finetuned.floats().map(Double.init), w = weights.floats().map(Double.init)
                for weighted in [false, true] {
                    let got = try deltaRowMoments(base: base, finetuned: finetuned, columnWeights: weighted ? weights : nil)
                    for row in Set([0, rows / 2, rows - 1]) {
                        let c = (0..<cols).map { (f[row * cols + $0] - b[row * cols + $0]) * (weighted ? w[$0] : 1) }
                        let relative = 64 * Double(Float.ulpOfOne) * 4
                        let magnitude = c.reduce(0) { $0 + Swift.abs($1) }, energy = c.reduce(0) { $0 + $1 * $1 }
                        XCTAssertEqual(got.sums[row], c.reduce(0, +), accuracy: relative * magnitude + 1e-12, "\(dtype) [\(rows),\(cols)] row \(row)")
                        XCTAssertEqual(got.squares[row], energy, accuracy: relative * energy + 1e-12, "\(dtype) [\(rows),\(cols)] row \(row)")
                    }
                }
            }
        }
        XCTAssertThrowsError(try deltaRowMoments(base: Tensor(zeros: [2, 3]), finetuned: Tensor(zeros: [3, 2])))
        XCTAssertThrowsError(try deltaRowMoments(base: Tensor(zeros: [2, 3]), finetuned: Tensor(zeros: [2, 3]), columnWeights: Tensor(zeros: [2])))
    }

    private func check(_ got: Tensor, _ expected: [Double], _ scale: [Double], _ what: String) {
        XCTAssertEqual(got.shape, [expected.count], what)
        XCTAssertEqual(got.dtype, .f32, what)
        for (index, (value, reference)) in zip(got.floats(), expected).enumerated() {
            let tolerance = Double(Float(reference).ulp) + 64 * Double(Float.ulpOfOne) * scale[index] + 1e-12
            if Swift.abs(Double(value) - reference) > tolerance {
                XCTFail("\(what): element \(index) is \(value), expected \(reference)")
                return
            }
        }
    }
}
