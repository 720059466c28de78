// TEMPORARY scalar stand-ins for the LopperCore kernel and random contract
// (/tmp/kernelapi.md), so that this branch builds and its tests run before the
// `kernels` and `random` branches land. DELETE THIS FILE when merging them:
// declarations here shadow the real LopperCore kernels inside LopperLua.
import LopperCore
struct RandomKey { var state: UInt64; init(seed: UInt64, name: String) { state = name.utf8.reduce(seed ^ 0xcbf29ce484222325) { ($0 ^ UInt64($1)) &* 0x100000001b3 } } }
private func draws(_ n: Int, _ key: RandomKey) -> [Float] { var s = key.state; return (0..<n).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(s >> 40) / Float(1 << 24) } }
private func map2(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
    guard a.shape == b.shape else { throw TensorError.shapeMismatch(op, a.shape, b.shape) }
    let x = a.floats(), y = b.floats(); return Tensor(zip(x, y).map(f), shape: a.shape)
}
private func map1(_ a: Tensor, _ f: (Float) -> Float) -> Tensor { Tensor(a.floats().map(f), shape: a.shape) }
func add(_ a: Tensor, _ b: Tensor) throws -> Tensor { try map2(a, b, "add", +) }
func add(_ a: Tensor, _ b: Float) throws -> Tensor { map1(a) { $0 + b } }
func sub(_ a: Tensor, _ b: Tensor) throws -> Tensor { try map2(a, b, "sub", -) }
func sub(_ a: Tensor, _ b: Float) throws -> Tensor { map1(a) { $0 - b } }
func mul(_ a: Tensor, _ b: Tensor) throws -> Tensor { try map2(a, b, "mul", *) }
func div(_ a: Tensor, _ b: Tensor) throws -> Tensor { try map2(a, b, "div", /) }
func div(_ a: Tensor, _ b: Float) throws -> Tensor { map1(a) { $0 / b } }
func scale(_ a: Tensor, _ b: Float) throws -> Tensor { map1(a) { $0 * b } }
func neg(_ a: Tensor) throws -> Tensor { map1(a) { -$0 } }
func abs(_ a: Tensor) throws -> Tensor { map1(a) { Swift.abs($0) } }
func sign(_ a: Tensor) throws -> Tensor { map1(a) { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 } }
func select(_ m: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor { let bb = b.floats(); var i = -1; return try map2(m, a, "select") { i += 1; return $0 != 0 ? $1 : bb[i] } }
func select(_ m: Tensor, _ a: Tensor, _ b: Float) throws -> Tensor { try map2(m, a, "select") { $0 != 0 ? $1 : b } }
func delta(_ f: Tensor, _ b: Tensor) throws -> Tensor { try sub(f, b) }
func greater(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, >) }
func greater(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, >) }
private func cmp(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Bool) throws -> Tensor { guard a.shape == b.shape else { throw TensorError.shapeMismatch("compare", a.shape, b.shape) }; return Tensor(zip(a.floats(), b.floats()).map { f($0, $1) ? 1 : 0 }, shape: a.shape, dtype: .bool) }
private func cmp(_ a: Tensor, _ b: Float, _ f: (Float, Float) -> Bool) -> Tensor { Tensor(a.floats().map { f($0, b) ? 1 : 0 }, shape: a.shape, dtype: .bool) }
func greaterEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, >=) }
func greaterEqual(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, >=) }
func less(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, <) }
func less(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, <) }
func lessEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, <=) }
func lessEqual(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, <=) }
func equal(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, ==) }
func equal(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, ==) }
func notEqual(_ a: Tensor, _ b: Tensor) throws -> Tensor { try cmp(a, b, !=) }
func notEqual(_ a: Tensor, _ b: Float) throws -> Tensor { cmp(a, b, !=) }
func sum(_ a: Tensor) throws -> Double { a.floats().reduce(0) { $0 + Double($1) } }
func mean(_ a: Tensor) throws -> Double { try sum(a) / Double(a.count) }
func variance(_ a: Tensor, correction: Int = 0) throws -> Double { let m = try mean(a); return a.floats().reduce(0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(a.count - correction) }
func norm(_ a: Tensor, p: Double = 2) throws -> Double {
    let x = a.floats().map { Double(Swift.abs($0)) }
    if p == 1 { return x.reduce(0, +) }
    if p == .infinity { return x.max() ?? 0 }
    return x.reduce(0) { $0 + $1 * $1 }.squareRoot()
}
private func rows(_ a: Tensor) -> [[Float]] { let (r, c) = a.matrixShape!; let f = a.floats(); return (0..<r).map { Array(f[$0 * c..<($0 + 1) * c]) } }
private func transposed(_ a: Tensor) -> Tensor { let (r, c) = a.matrixShape!; let f = a.floats(); return Tensor((0..<c).flatMap { j in (0..<r).map { f[$0 * c + j] } }, shape: [c, r]) }
func min(_ a: Tensor) throws -> Float { a.floats().min() ?? .nan }
func max(_ a: Tensor) throws -> Float { a.floats().max() ?? .nan }
func countNonZero(_ a: Tensor) throws -> Int { a.floats().filter { $0 != 0 }.count }
func rowSums(_ a: Tensor) throws -> Tensor { Tensor(rows(a).map { $0.reduce(0, +) }) }
func colSums(_ a: Tensor) throws -> Tensor { try rowSums(transposed(a)) }
func rowNorms(_ a: Tensor, p: Double = 2) throws -> Tensor { Tensor(try rows(a).map { Float(try norm(Tensor($0), p: p)) }) }
func colNorms(_ a: Tensor, p: Double = 2) throws -> Tensor { try rowNorms(transposed(a), p: p) }
struct TensorStats { var count: Int; var mean: Double; var std: Double; var min: Float; var max: Float; var nonZero: Int; var nanCount: Int }
func stats(_ a: Tensor) throws -> TensorStats { TensorStats(count: a.count, mean: try mean(a), std: try variance(a).squareRoot(), min: try min(a), max: try max(a), nonZero: try countNonZero(a), nanCount: 0) }
func kthLargest(_ a: Tensor, _ k: Int) throws -> Float { a.floats().sorted(by: >)[k - 1] }
private func topK(_ x: [Float], _ k: Int) -> [Float] {
    let order = x.indices.sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }
    var m = [Float](repeating: 0, count: x.count); for i in order.prefix(k) { m[i] = 1 }; return m
}
func topKMask(_ a: Tensor, _ k: Int) throws -> Tensor { Tensor(topK(a.floats(), k), shape: a.shape, dtype: .bool) }
func topKMaskPerRow(_ a: Tensor, _ k: Int) throws -> Tensor { Tensor(rows(a).flatMap { topK($0, k) }, shape: a.shape, dtype: .bool) }
func nmMask(_ a: Tensor, n: Int, m: Int) throws -> Tensor { a }
struct Histogram { var counts: [Int]; var lower: Float; var upper: Float; var below: Int; var above: Int; var nan: Int }
func histogram(_ a: Tensor, bins: Int, range: ClosedRange<Float>? = nil) throws -> Histogram { let x = a.floats(), lo = x.min() ?? 0, hi = x.max() ?? 1; var c = [Int](repeating: 0, count: bins); for v in x { c[Swift.min(bins - 1, Int((v - lo) / Swift.max(hi - lo, 1e-30) * Float(bins)))] += 1 }; return Histogram(counts: c, lower: lo, upper: hi, below: 0, above: 0, nan: 0) }
func uniform(_ shape: [Int], key: RandomKey) throws -> Tensor { Tensor(draws(try Tensor.elementCount(shape), key), shape: shape) }
func bernoulliMask(_ shape: [Int], keep: Double, key: RandomKey) throws -> Tensor { Tensor(draws(try Tensor.elementCount(shape), key).map { Double($0) < keep ? 1 : 0 }, shape: shape, dtype: .bool) }
extension Tensor { func converted(to dtype: DType) throws -> Tensor { Tensor(floats(), shape: shape, dtype: dtype) } }
