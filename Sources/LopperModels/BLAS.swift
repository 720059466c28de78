import CBLAS
import LopperCore

/// `C = alpha op(A) op(B) + beta C`, row-major: every matrix product of the model runtime
/// and of training. OpenBLAS runs on one thread, and large products are cut into
/// `splitParts` row blocks of C that Lopper's worker threads share: OpenBLAS's own threads
/// spin in `sched_yield` between products and take a core from the elementwise kernels.
/// The blocks depend only on the shape, never on the thread count, so neither does the
/// result (OpenBLAS's sums do depend on how rows are split: `BLASTests`). Each block packs
/// all of op(B) again, so there are few of them.
func sgemm(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float,
           _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    _ = openBLASOnOneThread
    func product(rows: Range<Int>) {
        // Row i of op(A) is row i of A, or column i when A is transposed.
        let aRows = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(n), Int32(k), alpha, aRows, Int32(lda), b, Int32(ldb), beta,
                    c + rows.lowerBound * ldc, Int32(ldc))
    }
    guard m * n * k >= splitWork, m >= 2 * splitAlignment else { return product(rows: 0..<m) }
    let rows = ((m + splitParts - 1) / splitParts + splitAlignment - 1) / splitAlignment * splitAlignment
    Parallel.forEach((m + rows - 1) / rows) { block in
        product(rows: block * rows..<min(m, (block + 1) * rows))
    }
}

/// Products from this many multiply-adds up are cut into `splitParts` blocks whose row
/// counts are multiples of `splitAlignment`.
let splitWork = 1 << 21, splitParts = 8, splitAlignment = 16

private let openBLASOnOneThread: Void = openblas_set_num_threads(1)
