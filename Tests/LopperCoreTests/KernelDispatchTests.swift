import XCTest
@testable import LopperCore

/// Every dispatch path of the wide kernels (portable Swift, AVX2, AVX-512: those this CPU
/// has) gives the same bits, including the groups a wide kernel hands back (ties with the
/// keep threshold, NaN results), partial groups, chunk edges and streaming stores.
final class KernelDispatchTests: XCTestCase {
    override func tearDown() { KernelPath.active = .widest }

    /// Inputs with every special value the passes treat apart: signed zeros, Inf, NaN, subnormals.
    func inputs(_ count: Int, _ dtype: DType) throws -> (Tensor, Tensor) {
        let u = try uniform([2 * count], key: RandomKey(seed: 5, name: "dispatch")).floats()
        var base = (0..<count).map { (u[$0] - 0.5) * 4 }
        var fine = (0..<count).map { base[$0] + (u[count + $0] - 0.5) * 0.1 }
        let specials: [Float] = [0, -0, .infinity, -.infinity, .nan, .leastNormalMagnitude / 4, -.leastNormalMagnitude / 4, 3.0e38]
        for (offset, value) in specials.enumerated() where offset * 997 < count {
            base[offset * 997] = value
            fine[offset * 997 + 1 < count ? offset * 997 + 1 : offset * 997] = value
        }
        return (Tensor(base, shape: [count], dtype: dtype), Tensor(fine, shape: [count], dtype: dtype))
    }

    func bytes(_ tensor: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount)) }

    func testFusedDareIsTheSameOnEveryPath() throws {
        XCTAssertTrue(KernelPath.available.contains(.portable))
        // keep 0.3 has L != 0 (ties need their refinement draw: ~2^-16 of the draws, so the
        // 2^20-element case has some); keep 0.5 has L == 0; keep 1 draws nothing.
        for dtype in [DType.bf16, .f32, .f16] {
            for count in [1, 63, 64, 129, 65536 + 100, 1 << 20] {
                let (base, fine) = try inputs(count, dtype)
                for keep in [0.3, 0.5, 1] {
                    for output in [DeltaOutput.merged, .delta] {
                        for rescale in [Rescale.times(1 / Float(keep)), .dividedBy(Float(keep))] {
                            let key = RandomKey(seed: 77, name: "t\(count)")
                            var results: [KernelPath: [UInt8]] = [:]
                            for path in KernelPath.available {
                                KernelPath.active = path
                                results[path] = bytes(try fusedDare(base: base, finetuned: fine, keep: keep, rescale: rescale,
                                                                    key: key, output: output))
                            }
                            for path in KernelPath.available {
                                XCTAssertEqual(results[path], results[.portable],
                                               "\(path) \(dtype) n=\(count) keep=\(keep) \(output) \(rescale)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The figures a wide kernel measures in the same pass equal a separate `compareDelta`
    /// pass over its output, exactly: whole blocks, redone groups (ties, NaN), partial blocks.
    func testMeasuredFiguresEqualACompareDeltaPass() throws {
        for dtype in [DType.bf16, .f32, .f16] {
            for count in [100, 1024, 5000, 65536 * 2 + 1000, 1 << 20] {
                let (base, fine) = try inputs(count, dtype)
                let b = base.floats(), f = fine.floats()
                let nonFinite = (0..<count).filter { !(Double(f[$0]) - Double(b[$0])).isFinite }.count
                XCTAssertTrue(count < 5000 || nonFinite > 0, "the inputs hold NaN and Inf")
                for (keep, output) in [(0.3, DeltaOutput.merged), (0.5, .delta), (1, .merged)] {
                    for path in KernelPath.available {
                        KernelPath.active = path
                        let key = RandomKey(seed: 8, name: "m\(count)")
                        let (result, figures) = try fusedDareMeasured(base: base, finetuned: fine, keep: keep, rescale: .dividedBy(Float(keep)),
                                                                      key: key, output: output)
                        let reference = try compareDelta(base: base, finetuned: fine, output: result, isMerged: output == .merged)
                        XCTAssertEqual(figures, reference, "\(path) \(dtype) n=\(count) keep=\(keep) \(output)")
                        XCTAssertEqual(figures.nonFiniteBefore, nonFinite)
                    }
                }
            }
        }
    }

    /// A given BOOL mask (the host's half of a `score` plugin) on the wide kernels: the same
    /// bits as the general pass, and figures equal to a `compareDelta` pass.
    func testFusedMaskIsTheSameOnEveryPath() throws {
        for dtype in [DType.bf16, .f32] {
            for count in [1, 63, 64, 1000, 65536 + 100, 1 << 20] {
                let (base, fine) = try inputs(count, dtype)
                for keep in [0.3, 0, 1] {
                    let mask = try bernoulliMask([count], keep: keep, key: RandomKey(seed: 4, name: "given"))
                    for output in [DeltaOutput.merged, .delta] {
                        var results: [[UInt8]] = []
                        for path in KernelPath.available {
                            KernelPath.active = path
                            let (result, figures) = try fusedMaskMeasured(base: base, finetuned: fine, mask: mask, scale: 1.7, output: output)
                            results.append(bytes(result))
                            XCTAssertEqual(bytes(try fusedMask(base: base, finetuned: fine, mask: mask, scale: 1.7, output: output)), results.last!)
                            let reference = try compareDelta(base: base, finetuned: fine, output: result, isMerged: output == .merged)
                            XCTAssertEqual(figures, reference, "\(path) \(dtype) n=\(count) keep=\(keep) \(output)")
                        }
                        XCTAssertEqual(Set(results).count, 1, "\(dtype) n=\(count) keep=\(keep) \(output)")
                    }
                }
            }
        }
    }

    /// Past the streaming threshold the wide kernels write around the caches: same bits.
    func testStreamingStoresGiveTheSameBits() throws {
        for dtype in [DType.bf16, .f32] {
            let (base, fine) = try inputs((1 << 22) + 4160, dtype)
            let key = RandomKey(seed: 3, name: "big")
            var results: [[UInt8]] = []
            for path in KernelPath.available {
                KernelPath.active = path
                results.append(bytes(try fusedDare(base: base, finetuned: fine, keep: 0.01, scale: 100, key: key)))
            }
            XCTAssertEqual(Set(results).count, 1, "\(dtype)")
        }
    }

    func testUniformDrawsAreTheSameOnEveryPath() throws {
        for count in [1, 31, 32, 33, 1000, 65536 * 3 + 17] {
            var results: [[UInt8]] = []
            for path in KernelPath.available {
                KernelPath.active = path
                results.append(bytes(try uniform([count], key: RandomKey(seed: 1, name: "u"))))
            }
            XCTAssertEqual(Set(results).count, 1, "n=\(count)")
        }
    }

    /// Keep masks (Bernoulli draws, `apply`'s regenerated positions): whole tensors, and
    /// ranges that start and end inside a 64-element group; ties with the threshold
    /// (keep 0.3: L != 0) are redone off the wide kernel.
    func testKeepMasksAreTheSameOnEveryPath() throws {
        for keep in [0.3, 0.5, 0.01, 0.999, 0, 1] {
            for count in [1, 63, 64, 65, 129, 65536 * 3 + 17, 1 << 20] {
                var results: [[UInt8]] = []
                for path in KernelPath.available {
                    KernelPath.active = path
                    results.append(bytes(try bernoulliMask([count], keep: keep, key: RandomKey(seed: 3, name: "m\(count)"))))
                }
                XCTAssertEqual(Set(results).count, 1, "keep \(keep), n=\(count)")
            }
            let rule = try KeepRule(keep), key = RandomKey(seed: 9, name: "ranges")
            for range in [5..<70, 64..<128, 1..<1000, 100..<65536 * 2 + 3] {
                var results: [[UInt8]] = []
                for path in KernelPath.available {
                    KernelPath.active = path
                    var target = [UInt8](repeating: 7, count: range.upperBound + 64)
                    target.withUnsafeMutableBufferPointer { rule.fill(range, key: key, into: $0.baseAddress!) }
                    XCTAssertTrue(target[..<range.lowerBound].allSatisfy { $0 == 7 } && target[range.upperBound...].allSatisfy { $0 == 7 },
                                  "only the range is written")
                    results.append(target)
                }
                XCTAssertEqual(Set(results).count, 1, "keep \(keep), range \(range)")
            }
        }
    }

    /// The wide quickselect (per-row masks) against a sort, on every wide path: random keys,
    /// few distinct ones, sorted, reversed and organ-pipe orders, lengths around the vector
    /// and the sorting cut-off, every rank class; with 0 rounds its counting select alone.
    func testWideSelectMatchesASort() throws {
        var generator = SplitMix(seed: 41)
        for path in KernelPath.available where path != .portable {
            let wide = try XCTUnwrap(WideSelect(.f32, path))
            for count in [1, 15, 16, 17, 64, 65, 1000, 4096, 5632] {
                let random = (0..<count).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
                let few = (0..<count).map { _ in UInt32(generator.int(below: 3)) * 1000 }
                let sorted = (0..<count).map { UInt32($0) }
                let patterns = [random, few, sorted, sorted.reversed(), (0..<count).map { UInt32(min($0, count - $0)) }]
                for keys in patterns {
                    let reference = keys.sorted()
                    for rank in Set([0, count / 10, count / 2, count - 1]) {
                        for rounds: Int32 in [48, 0] {
                            var work = keys, scratch = [UInt32](repeating: 0, count: 2 * count)
                            let got = work.withUnsafeMutableBufferPointer { work in
                                scratch.withUnsafeMutableBufferPointer {
                                    wide.selectKey(work.baseAddress!, count: count, rank: rank, scratch: $0.baseAddress!, rounds: rounds)
                                }
                            }
                            XCTAssertEqual(got, reference[rank], "\(path) n=\(count) rank \(rank) rounds \(rounds)")
                        }
                    }
                }
            }
        }
    }

    /// The selection passes (threshold histograms, mask at the threshold) on every path:
    /// F32 and BF16 past the histogram size, with many ties (BF16 values repeat), NaN, both
    /// zeros and lengths that end inside a vector.
    func testSelectionIsTheSameOnEveryPath() throws {
        for dtype in [DType.f32, .bf16] {
            for count in [(1 << 18) + 5, (1 << 20) + 13] {
                let (base, _) = try inputs(count, dtype)
                for (values, k) in [try abs(base, dtype: dtype), base].flatMap({ v in [1, count / 100, count / 2, count - 3].map { (v, $0) } }) {
                    var masks: [[UInt8]] = [], thresholds: [UInt32] = []
                    for path in KernelPath.available {
                        KernelPath.active = path
                        masks.append(bytes(try topKMask(values, k)))
                        thresholds.append(try kthLargest(values, k).bitPattern)
                    }
                    XCTAssertEqual(Set(masks).count, 1, "\(dtype) n=\(count) k=\(k)")
                    XCTAssertEqual(Set(thresholds).count, 1, "\(dtype) n=\(count) k=\(k)")
                    XCTAssertEqual(masks[0].reduce(0) { $0 + Int($1) }, k)
                }
            }
            // Per row (WANDA): the threshold of each row, then its mask.
            let (rows, _) = try inputs(257 * 1031, dtype)
            for values in [rows, try abs(rows, dtype: dtype)] {
                for k in [1, 10, 515, 1030] {
                    var masks: [[UInt8]] = []
                    for path in KernelPath.available {
                        KernelPath.active = path
                        masks.append(bytes(try topKMaskPerRow(try values.reshaped([257, 1031]), k)))
                    }
                    XCTAssertEqual(Set(masks).count, 1, "\(dtype) per row, k=\(k)")
                    XCTAssertEqual(masks[0].reduce(0) { $0 + Int($1) }, 257 * k)
                }
            }
        }
    }

    func testPathsAreSelectable() {
        KernelPath.active = .portable
        XCTAssertEqual(KernelPath.active, .portable)
        KernelPath.active = .avx512
        XCTAssertEqual(KernelPath.active, min(.avx512, KernelPath.widest))
        print("kernel paths on this CPU: \(KernelPath.available)")
    }
}
