import ArgumentParser

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the tensors of a safetensors file or checkpoint folder.")
    @Argument(help: "A .safetensors file or a checkpoint folder.") var path: String
    func run() throws { throw ValidationError("inspect: not implemented yet") }
}
