import ArgumentParser
import LopperLua
#if canImport(Glibc)
import Glibc
#endif

struct Docs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Lua API reference (the source of Docs/lua-api.md).")
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func run() throws {
        let text = LuaDocs.markdown()
        guard let output else { print(text, terminator: ""); return }
        guard let file = fopen(output, "w") else { throw ValidationError("docs: cannot write \(output)") }
        defer { fclose(file) }
        fputs(text, file)
    }
}
