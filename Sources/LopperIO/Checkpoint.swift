import Foundation
import LopperCore

/// A checkpoint: one `.safetensors` file, or a Hugging Face folder with
/// `model.safetensors`, or shards with a `*.safetensors.index.json`, or loose shards.
/// Opening reads only headers; tensors are zero-copy views found by name across shards.
public final class Checkpoint: @unchecked Sendable {
    public let path: String
    /// Shard files in order (index order, or sorted file names).
    public let shards: [SafetensorsFile]
    /// Tensor names: shard order, then header order within each shard.
    public let names: [String]
    /// Files of the folder that are not shards or the index (config.json, tokenizer files, ...).
    public let otherFiles: [String]
    /// The index file's path, when the checkpoint has one.
    public let indexPath: String?
    private let location: [String: Int]

    public init(path: String) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw SafetensorsError(path, "no such file or folder")
        }
        guard isFolder.boolValue else {
            shards = [try SafetensorsFile(path: path)]
            names = shards[0].names
            otherFiles = []
            indexPath = nil
            location = Dictionary(names.map { ($0, 0) }, uniquingKeysWith: { first, _ in first })
            return
        }
        let contents = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        let indexName = contents.contains("model.safetensors.index.json") ? "model.safetensors.index.json"
            : contents.first { $0.hasSuffix(".safetensors.index.json") }
        var shardFiles: [String]
        var weightMap: [String: String] = [:]
        if let indexName {
            let indexFile = path + "/" + indexName
            indexPath = indexFile
            let data = try Data(contentsOf: URL(fileURLWithPath: indexFile))
            let json: JSON
            do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch { throw SafetensorsError(indexFile, "\(error)") }
            guard case .object(let pairs)? = json["weight_map"] else { throw SafetensorsError(indexFile, "no weight_map object") }
            shardFiles = []
            for (tensor, value) in pairs {
                guard case .string(let file) = value else { throw SafetensorsError(indexFile, "weight_map entry \"\(tensor)\" is not a file name") }
                guard !file.contains("/") else { throw SafetensorsError(indexFile, "weight_map entry \"\(tensor)\" points outside the folder: \(file)") }
                weightMap[tensor] = file
                if !shardFiles.contains(file) { shardFiles.append(file) }
            }
            shardFiles.sort()
        } else {
            indexPath = nil
            shardFiles = contents.filter { $0.hasSuffix(".safetensors") }
            guard !shardFiles.isEmpty else { throw SafetensorsError(path, "no .safetensors files in this folder") }
        }
        let indexFile = indexPath
        shards = try shardFiles.map { file in
            guard FileManager.default.fileExists(atPath: path + "/" + file) else {
                throw SafetensorsError(indexFile ?? path, "shard \(file) listed in the index is missing")
            }
            return try SafetensorsFile(path: path + "/" + file)
        }
        var location: [String: Int] = [:]
        var names: [String] = []
        for (index, shard) in shards.enumerated() {
            for name in shard.names {
                if let other = location[name] {
                    throw SafetensorsError(path, "tensor \"\(name)\" is in both \(shardFiles[other]) and \(shardFiles[index])")
                }
                location[name] = index
                names.append(name)
            }
        }
        for (tensor, file) in weightMap {
            guard let index = location[tensor], shardFiles[index] == file else {
                throw SafetensorsError(indexFile ?? path, "index maps \"\(tensor)\" to \(file), but that shard does not hold it")
            }
        }
        self.names = names
        self.location = location
        let shardSet = Set(shardFiles)
        otherFiles = contents.filter { name in
            !shardSet.contains(name) && name != indexName && !name.hasSuffix(".safetensors")
                && (try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.type] as? FileAttributeType) == .typeRegular
        }
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    public func info(_ name: String) -> TensorInfo? {
        location[name].flatMap { shards[$0].info(name) }
    }

    /// The shard file holding `name`.
    public func shard(of name: String) -> SafetensorsFile? { location[name].map { shards[$0] } }

    /// A zero-copy view of tensor `name`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let index = location[name] else { throw SafetensorsError(path, "no tensor named \"\(name)\"") }
        return try shards[index].tensor(name)
    }

    /// Lets go of the resident pages of tensor `name` (see `MappedFile.releasePages`).
    public func releasePages(of name: String) {
        guard let shard = shard(of: name), let info = shard.info(name) else { return }
        shard.mapping.releasePages(shard.dataOffset + info.begin ..< shard.dataOffset + info.end)
    }

    /// Copies config and tokenizer files (everything that is not a shard) into `folder`.
    public func copyOtherFiles(to folder: String) throws {
        for file in otherFiles {
            let target = folder + "/" + file
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: path + "/" + file, toPath: target)
        }
    }

    public var totalBytes: Int { names.reduce(0) { $0 + (info($1)?.byteCount ?? 0) } }
}
