import ArgumentParser
import LopperIO

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors file or checkpoint folder.",
        discussion: "Reads only headers, so large sharded folders print at once. Malformed files are reported with the file and the fault."
    )

    @Argument(help: "A .safetensors file or a checkpoint folder (single file, shards with index, or loose shards).")
    var path: String

    @Flag(help: "Print JSON for machines instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            let summary = CheckpointSummary(try Checkpoint(path: path))
            print(json ? summary.json() : summary.text())
        }
    }
}
