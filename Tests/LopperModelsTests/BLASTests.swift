import XCTest
import LopperCore
@testable import LopperModels

/// Large products are split by rows of C over the worker threads: the same bits on any
/// thread count, for every transpose, against the plain product in double precision.
final class BLASTests: XCTestCase {
    func testSplitProductsAreTheSameOnAnyThreadCount() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var generator = SystemRandomNumberGenerator()
        for (m, n, k) in [(1024, 384, 384), (384, 384, 1024), (333, 129, 200), (70, 3000, 17)] {
            XCTAssertGreaterThanOrEqual(m * n * k, splitWork / 8)
            for (transA, transB) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &generator) }
                let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &generator) }
                let start = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &generator) }
                let lda = transA ? m : k, ldb = transB ? k : n
                var results: [[Float]] = []
                for threads in [1, 2, 3, 4] {
                    Parallel.threads = threads
                    var c = start
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            c.withUnsafeMutableBufferPointer { c in
                                sgemm(transA, transB, m: m, n: n, k: k, alpha: 0.5, a.baseAddress!, lda: lda,
                                      b.baseAddress!, ldb: ldb, beta: 0.25, c.baseAddress!, ldc: n)
                            }
                        }
                    }
                    results.append(c)
                }
                XCTAssertTrue(results.allSatisfy { $0 == results[0] }, "\(m)x\(n)x\(k) transA \(transA) transB \(transB)")
                for (i, j) in [(0, 0), (m - 1, n - 1), (m / 2, n / 3)] {
                    var sum = 0.0
                    for p in 0..<k {
                        let x = Double(transA ? a[p * lda + i] : a[i * lda + p]), y = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                        sum += x * y
                    }
                    XCTAssertEqual(Double(results[0][i * n + j]), 0.5 * sum + 0.25 * Double(start[i * n + j]), accuracy: 1e-3)
                }
            }
        }
    }
}
