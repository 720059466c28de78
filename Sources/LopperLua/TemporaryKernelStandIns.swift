// TEMPORARY scalar stand-ins for the random part of the LopperCore contract
// (RandomKey, uniform, bernoulliMask) until the Philox generator lands; the general
// kernels are the real LopperCore ones. DELETE THIS FILE when Philox lands.
// Not reproducible across versions: masks drawn here will change.
import LopperCore
struct RandomKey { var state: UInt64; init(seed: UInt64, name: String) { state = name.utf8.reduce(seed ^ 0xcbf29ce484222325) { ($0 ^ UInt64($1)) &* 0x100000001b3 } } }
private func draws(_ n: Int, _ key: RandomKey) -> [Float] { var s = key.state; return (0..<n).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(s >> 40) / Float(1 << 24) } }
func uniform(_ shape: [Int], key: RandomKey) throws -> Tensor { Tensor(draws(try Tensor.elementCount(shape), key), shape: shape) }
func bernoulliMask(_ shape: [Int], keep: Double, key: RandomKey) throws -> Tensor { Tensor(draws(try Tensor.elementCount(shape), key).map { Double($0) < keep ? 1 : 0 }, shape: shape, dtype: .bool) }
