import CLua
import CLuaShim
import LopperCore

/// Tensors in Lua: a full userdata holding a retained reference to the Swift
/// `Tensor` (the data stays in Swift; `__gc` releases the reference). The metatable
/// is protected (`__metatable`), so scripts can neither read nor replace it.
public enum TensorUserdata {
    public static let metatable = "lopper.Tensor"
    static let lock = "locked: tensor metatables cannot be changed"

    /// Pushes `tensor`; its heap bytes count against the state's tensor memory limit.
    public static func push(_ tensor: Tensor, on stack: LuaStack) {
        let external = tensor.storage.isMapped ? 0 : tensor.byteCount
        stack.pushObject(tensor, metatable: metatable, externalBytes: external)
    }

    /// The tensor at `index`, or nil when the value is not a tensor.
    public static func tensor(at index: Int32, on stack: LuaStack) -> Tensor? {
        guard let pointer = lopper_to_object(stack.state, index, metatable) else { return nil }
        // Only tensors carry this metatable, so the cast cannot fail.
        return Unmanaged<Tensor>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Creates the metatable: arithmetic metamethods, `#`, `__tostring`, `__gc`, and
    /// `__index` pointing at the method table. Names come from `LuaDocs`.
    static func register(in stack: LuaStack) {
        let state = stack.state
        guard let table = LuaObjects.newObjectMetatable(metatable, lock: lock, metamethods: TensorMethods.metamethods, in: stack) else { return }
        lua_createtable(state, 0, Int32(TensorMethods.methods.count))
        let methods = stack.top
        for (name, body) in TensorMethods.methods + PruningFunctions.methods {
            stack.push(function: "Tensor:" + name, body)
            LuaDocs.remember(functionAt: -1, as: "Tensor:" + name, on: stack)
            stack.setField(name, in: methods)
        }
        stack.setField("__index", in: table)
        stack.pop()
    }
}

extension LuaStack {
    /// The tensor argument at `index` (a lazy tensor is computed now); `function`
    /// names the caller in the error.
    public func tensor(_ index: Int32, _ function: String) throws -> Tensor {
        if let tensor = TensorUserdata.tensor(at: index, on: self) { return tensor }
        guard let lazy = LazyUserdata.lazy(at: index, on: self) else {
            throw LuaError.badArgument(index, function, "tensor", got: typeName(index))
        }
        try checkAllocation(lazy.shape, lazy.isMask ? .bool : .f32, function)
        do { return try lazy.evaluate() } catch let error as TensorError { throw LuaError("\(function): \(error)") }
    }

    /// Whether the value at `index` is a tensor, lazy or not.
    public func isTensor(_ index: Int32) -> Bool {
        lopper_to_object(state, index, TensorUserdata.metatable) != nil || LazyUserdata.lazy(at: index, on: self) != nil
    }

    public func push(_ tensor: Tensor) { TensorUserdata.push(tensor, on: self) }

    /// Refuses a new tensor of `bytes` that would not fit the state's tensor memory
    /// (sandbox) or the machine, before anything is allocated.
    public func checkAllocation(_ shape: [Int], _ dtype: DType, _ function: String) throws {
        let count = try Tensor.elementCount(shape)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        let limit = lopper_external_limit(state)
        var available: Int { limit > 0 ? max(0, limit - lopper_external_bytes(state)) : LuaState.Limits.halfOfPhysicalMemory * 2 }
        if !overflow, bytes > available, limit > 0 {
            // Unreachable tensors may still hold the memory: collect them first.
            collectGarbage()
        }
        guard !overflow, bytes <= available else {
            throw LuaError("\(function): a \(shape.shapeText) \(dtype) tensor needs \(overflow ? "more than any" : "\(bytes >> 20) MiB of") memory, more than the \(available >> 20) MiB available")
        }
    }
}
