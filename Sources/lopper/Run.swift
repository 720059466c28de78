import ArgumentParser
import LopperLua

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Lua script with the lopper module.",
        discussion: "The script gets the standard libraries, the `lopper` module and `arg` (arg[0] is the script). Ctrl-C stops it cleanly.")
    @Argument(help: "The script.") var script: String
    @Argument(parsing: .captureForPassthrough, help: "Arguments passed to the script as arg[1], arg[2], ...")
    var arguments: [String] = []

    func run() throws {
        let status = LuaScript.run(path: script, arguments: arguments)
        if status != 0 { throw ExitCode(status) }
    }
}
