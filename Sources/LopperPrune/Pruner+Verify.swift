import Foundation
import LopperCore
import LopperIO

/// `lopper reproduce`: runs the plan again tensor by tensor, as `run` would, and
/// compares each result with the tensor an earlier output holds, byte for byte,
/// without writing anything. Holds one tensor's work at a time, as `run` does.
extension Pruner {
    public enum Verification {
        case identical(tensors: Int)
        /// The first tensor (in file order) that differs, and how.
        case differs(tensor: String, detail: String)
    }

    public func verify(against recorded: Checkpoint, progress: Progress? = nil) throws -> Verification {
        let expected = plan.map(\.name)
        if Set(recorded.names) != Set(expected) {
            let missing = expected.filter { !recorded.contains($0) }, extra = recorded.names.filter { !expected.contains($0) }
            let name = missing.first ?? extra.first ?? ""
            return .differs(tensor: name, detail: missing.first != nil ? "missing from \(recorded.path)" : "in \(recorded.path) but not in the re-run")
        }
        var bytes = 0
        for (index, tensor) in plan.enumerated() {
            guard let info = recorded.info(tensor.name) else { continue }
            if info.dtype != tensor.outputDType || info.shape != tensor.shape {
                return .differs(tensor: tensor.name, detail: "recorded as \(info.dtype.name) \(info.shape.shapeText), re-run gives \(tensor.outputDType.name) \(tensor.shape.shapeText)")
            }
            let (output, _) = try process(tensor)
            let stored = try recorded.tensor(tensor.name)
            if let element = firstDifference(output, stored) {
                let was = stored.dtype.isComputable ? "\(stored.loadScalar(at: element))" : "other bytes"
                let now = output.dtype.isComputable ? "\(output.loadScalar(at: element))" : "other bytes"
                return .differs(tensor: tensor.name, detail: "element \(element) of \(info.count) is \(was) in the output, \(now) in the re-run")
            }
            bytes += info.byteCount
            progress?.update(tensors: index + 1, bytes: bytes, current: tensor.name)
            finetuned.releasePages(of: tensor.name)
            base.releasePages(of: tensor.name)
            recorded.releasePages(of: tensor.name)
        }
        progress?.finish()
        return .identical(tensors: plan.count)
    }

    /// The index of the first element whose bytes differ (both tensors of one dtype and shape).
    private func firstDifference(_ a: Tensor, _ b: Tensor) -> Int? {
        let size = a.dtype.byteSize, count = a.byteCount
        guard memcmp(a.data, b.data, count) != 0 else { return nil }
        var offset = 0
        while offset < count, memcmp(a.data + offset, b.data + offset, size) == 0 { offset += size }
        return offset / size
    }
}
