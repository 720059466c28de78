import ArgumentParser
import LopperLua

struct ReplCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repl",
        abstract: "An interactive Lua 5.4 prompt with the lopper module.",
        discussion: """
        Works like the standalone `lua` interpreter: expressions print without `=`, \
        several results are tab-separated, an unfinished statement continues at the `>>` \
        prompt, and an error prints its traceback without ending the session. Tensors \
        print as summaries (shape, dtype, mean, std, min, max, non-zero fraction), small \
        ones in full; tables are pretty-printed.

        Checkpoints are bound to globals at start-up: --base to `base`, --finetuned to \
        `ft`, both together also `delta = lopper.delta(base, ft)`, and PATH... to `m1`, \
        `m2`, ... Helpers: help(x), layers(delta), hist(t [, bins]).

        Keys: Tab completes globals, fields (lopper.ze), methods (t:me) and tensor names \
        (ft["model.layers.0.). Ctrl-C stops a running statement or clears the line; \
        Ctrl-D exits. History is kept in $LOPPER_HISTORY, else \
        $XDG_STATE_HOME/lopper/history (default ~/.local/state/lopper/history).

        Without a terminal, statements are read from standard input without prompts: \
        `printf 'x = 1+1\\nx\\n' | lopper repl` prints 2; the exit status is 1 if any \
        statement failed.
        """)

    @Option(help: ArgumentHelp("Pre-trained checkpoint (file or folder), bound to `base`.", valueName: "dir"))
    var base: String?

    @Option(help: ArgumentHelp("Fine-tuned checkpoint, bound to `ft` (with --base also `delta`).", valueName: "dir"))
    var finetuned: String?

    @Argument(help: ArgumentHelp("More checkpoints, bound to m1, m2, ...", valueName: "path"))
    var paths: [String] = []

    func run() throws {
        let status = LuaRepl.run(.init(base: base, finetuned: finetuned, paths: paths))
        if status != 0 { throw ExitCode(status) }
    }
}
