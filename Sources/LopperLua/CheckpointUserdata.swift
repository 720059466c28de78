import CLua
import CLuaShim
import LopperCore
import LopperIO

/// Checkpoints and lazy deltas in Lua (trusted states only).
enum CheckpointFunctions {
    static let functions: [(String, LuaFunction)] = [
        ("delta", { stack in
            let base = try stack.tensor(1, "delta")
            let finetuned = try stack.tensor(2, "delta")
            stack.push(try delta(finetuned, base))
            return 1
        }),
    ]

    static func registerMetatables(in stack: LuaStack) {}
}
