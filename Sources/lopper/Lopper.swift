import ArgumentParser

@main
struct Lopper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lopper",
        abstract: "Prune the delta parameters of fine-tuned models, scripted in Lua.",
        version: lopperVersion,
        subcommands: [Inspect.self, Diff.self, Prune.self, PluginCommand.self, Apply.self, Calibrate.self, SearchQ.self, Eval.self,
                      Run.self, ReplCommand.self, Docs.self]
    )
}

let lopperVersion = "0.1.0"
