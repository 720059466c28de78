#if canImport(Glibc)
import Glibc
#endif

/// `lopper run script.lua [args]`: a trusted state, `arg` as the `lua` interpreter
/// sets it, errors as `script.lua:LINE: message` plus a traceback on stderr.
public enum LuaScript {
    /// Exit status after running `path`: 0, 1 on an error, 130 when interrupted.
    public static func run(path: String, arguments: [String],
                           errorOutput: (String) -> Void = { fputs($0, stderr) }) -> Int32 {
        LuaInterrupt.installHandler()
        defer { LuaInterrupt.clear() }
        do {
            let lua = try LuaState()
            defer { lua.close() }
            try lua.run(file: path, arguments: arguments)
            fflush(stdout)
            return 0
        } catch let error as LuaError {
            fflush(stdout)
            let interrupted = LuaInterrupt.isPending && error.message.hasSuffix("interrupted")
            errorOutput(error.description + "\n")
            return interrupted ? 130 : 1
        } catch {
            fflush(stdout)
            errorOutput("\(path): \(error)\n")
            return 1
        }
    }
}
