import ArgumentParser
import Foundation
import LopperIO

@main
struct Lopper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lopper",
        abstract: "Prune the delta parameters of fine-tuned models, scripted in Lua.",
        version: lopperVersion,
        subcommands: [Inspect.self, Diff.self, Prune.self, Finetune.self, PluginCommand.self, Apply.self, Calibrate.self, SearchQ.self, Eval.self,
                      Reproduce.self, MergeParts.self, Run.self, ReplCommand.self, Docs.self]
    )

    /// Every failure is one line on stderr, `lopper: error: ...`, a bad option as much as a
    /// failed run (ArgumentParser would add the usage); --help and --version print as usual.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error), text = message(for: error)
            if code == .success || text.isEmpty { exit(withError: error) }
            let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " ")
            fputs("lopper: error: \(terminalSafe(line)) (see --help)\n", stderr)
            Foundation.exit(code.rawValue)
        }
    }
}

let lopperVersion = "0.1.0"
