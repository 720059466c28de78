import ArgumentParser
import Foundation
import LopperIO
import LopperLua

struct Docs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Lua API reference (the source of Docs/lua-api.md).")

    @Option(help: "Write to this file instead of standard output.") var output: String?
    @Flag(help: "Replace an existing --output file.") var overwrite = false

    func run() throws {
        try reportingErrors {
            let text = LuaDocs.markdown()
            guard let output else { print(text, terminator: ""); return }
            var paths = OutputGuard(overwrite: overwrite)
            paths.output("--output", output, .file)
            try paths.check()
            try writeFileAtomically(Data(text.utf8), to: output)
        }
    }
}
