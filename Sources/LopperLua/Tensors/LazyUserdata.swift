import CLua
import CLuaShim
import LopperCore

/// Lazy tensors in Lua (`lopper.Lazy`): what a plugin's `delta`, `ctx.rng:bernoulli`
/// and elementwise arithmetic on them give. Arithmetic (`+ - * /`, unary minus,
/// `abs`, `sign`) builds a `LazyTensor`; anything else (reductions, reshapes,
/// selections, passing it to a function) computes the values first, as a tensor. So a
/// plugin written as the paper's equation runs as one fused pass, and one that needs
/// values gets them without asking.
enum LazyUserdata {
    static let metatable = "lopper.Lazy"

    static func push(_ lazy: LazyTensor, on stack: LuaStack) {
        stack.pushObject(lazy, metatable: metatable)
    }

    static func lazy(at index: Int32, on stack: LuaStack) -> LazyTensor? {
        stack.object(index, metatable: metatable, as: LazyTensor.self)
    }

    /// Creates the metatable: the tensor methods (which compute the values through
    /// `LuaStack.tensor`), with the elementwise ones and the shape queries kept lazy.
    static func register(in stack: LuaStack) {
        let state = stack.state
        guard let table = LuaObjects.newObjectMetatable(metatable, lock: TensorUserdata.lock, metamethods: metamethods, in: stack) else { return }
        let overridden = Set(methods.map(\.0))
        lua_createtable(state, 0, Int32(TensorMethods.methods.count))
        let index = stack.top
        for (name, body) in TensorMethods.methods + PruningFunctions.methods where !overridden.contains(name) {
            stack.push(function: "Tensor:" + name, body)
            stack.setField(name, in: index)
        }
        for (name, body) in methods {
            stack.push(function: "Tensor:" + name, body)
            stack.setField(name, in: index)
        }
        stack.setField("__index", in: table)
        stack.pop()
    }

    private static func receiver(_ stack: LuaStack, _ function: String) throws -> LazyTensor {
        guard let lazy = lazy(at: 1, on: stack) else {
            throw LuaError.badArgument(1, function, "tensor", got: stack.typeName(1))
        }
        return lazy
    }

    private static let methods: [(String, LuaFunction)] = [
        ("shape", { stack in stack.push(integers: try receiver(stack, "Tensor:shape").shape); return 1 }),
        ("numel", { stack in stack.push(try receiver(stack, "Tensor:numel").count); return 1 }),
        ("dtype", { stack in stack.push(try receiver(stack, "Tensor:dtype").isMask ? "BOOL" : "F32"); return 1 }),
        ("abs", { stack in push(try LazyTensor.unary(.abs, try receiver(stack, "Tensor:abs")), on: stack); return 1 }),
        ("sign", { stack in push(try LazyTensor.unary(.sign, try receiver(stack, "Tensor:sign")), on: stack); return 1 }),
    ]

    private static let metamethods: [(String, LuaFunction)] = [
        ("__add", { try binary(.add, "add", $0) }),
        ("__sub", { try binary(.sub, "sub", $0) }),
        ("__mul", { try binary(.mul, "mul", $0) }),
        ("__div", { try binary(.div, "div", $0) }),
        ("__unm", { stack in push(try LazyTensor.unary(.neg, try receiver(stack, "unm")), on: stack); return 1 }),
        ("__len", { stack in stack.push(try receiver(stack, "len").count); return 1 }),
        ("__tostring", { stack in
            let lazy = try receiver(stack, "tostring")
            stack.push("Tensor(\(lazy.isMask ? "BOOL" : "F32") \(lazy.shape.shapeText), computed when used)")
            return 1
        }),
    ]

    /// `a op b` for the operands at 1 and 2, either of which may be a lazy tensor, a
    /// tensor or a number (the tensor metamethods come here when one side is lazy).
    static func binary(_ operation: LazyTensor.BinaryOperation, _ name: String, _ stack: LuaStack) throws -> Int32 {
        func operand(_ index: Int32) throws -> LazyOperand {
            if let lazy = lazy(at: index, on: stack) { return .lazy(lazy) }
            if let tensor = TensorUserdata.tensor(at: index, on: stack) { return .tensor(tensor) }
            guard stack.type(index) == LUA_TNUMBER else {
                throw LuaError("\(name): cannot combine a tensor with a \(stack.typeName(index)) value")
            }
            return .scalar(Float(try stack.number(index, name)))
        }
        do {
            push(try LazyTensor.binary(operation, try operand(1), try operand(2)), on: stack)
        } catch let error as TensorError {
            throw LuaError("\(error)")
        }
        return 1
    }
}
