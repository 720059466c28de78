import ArgumentParser

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a Lua script with the lopper module.")
    @Argument(help: "The script.") var script: String
    func run() throws { throw ValidationError("run: not implemented yet") }
}
