import ArgumentParser
import Foundation
import LopperIO
import LopperLua

struct Docs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Lua API reference (the source of Docs/lua-api.md).")

    @OptionGroup(title: "Output") var outputs: OutputOptions

    func run() throws {
        try reportingErrors {
            let text = LuaDocs.markdown()
            guard let output = outputs.out else { print(text, terminator: ""); return }
            var paths = OutputGuard(overwrite: outputs.overwrite)
            paths.output("--out", output, .file)
            try paths.check()
            try writeFileAtomically(Data(text.utf8), to: output)
        }
    }
}
