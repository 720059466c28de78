import ArgumentParser
import Foundation
import LopperIO

struct MergeParts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-parts",
        abstract: "Join the part folders of a `lopper prune --part i/n` run into one output folder.",
        discussion: """
        Each part wrote its shards into OUT.part-I-of-N; merge-parts checks that every part is there, \
        once, from the same run (same command apart from --part, same inputs' layout), links or copies the \
        shards into --out, writes the index and copies config and tokenizer files: the folder a single run \
        would have written, byte for byte. The part folders are left as they are (the shards are hard links \
        where the file system allows, so removing the parts frees nothing twice). Docs/parts.md has a Slurm example.

        Examples:
          lopper merge-parts --out pruned                       # finds pruned.part-*-of-N beside it
          lopper merge-parts --out pruned a/pruned.part-1-of-2 b/pruned.part-2-of-2
        """)

    @Argument(help: ArgumentHelp("The part folders (default: OUT.part-I-of-N beside --out).", valueName: "part"))
    var parts: [String] = []
    @OptionGroup(title: "Output") var outputs: OutputOptions

    func run() throws {
        try reportingErrors {
            guard let out = outputs.out else { throw ValidationError("--out DIR is required: the folder to write") }
            let folders = parts.isEmpty ? ShardParts.discover(for: out) : parts
            var paths = OutputGuard(overwrite: outputs.overwrite)
            for folder in folders { paths.input(folder, folder) }
            paths.output("--out", out, .folder)
            try paths.check()
            let merged = try ShardParts.merge(folders, into: out)
            print("merged \(folders.count) part\(folders.count == 1 ? "" : "s"): \(merged.shards) shard\(merged.shards == 1 ? "" : "s"), \(byteText(merged.bytes)) into \(terminalSafe(out))")
        }
    }
}
