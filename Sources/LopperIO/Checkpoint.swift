import Foundation
#if canImport(Glibc)
import Glibc
#endif
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
    /// Entries of the folder that are not regular files (FIFOs, sockets, devices, broken
    /// links): left out of `otherFiles`, with what they are, for a warning.
    public let skippedFiles: [String]
    private let location: [String: Int]
    /// The folder `otherFiles` are in (the base's, for an adapter seen as a model).
    private let filesFolder: String
    /// Tensors computed rather than read: a LoRA adapter's changes to the base (see
    /// Checkpoint+Adapter.swift); nil for a checkpoint on disk.
    let adaptation: Adaptation?

    public init(path: String) throws {
        self.path = path
        filesFolder = path
        adaptation = nil
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw SafetensorsError(path, "no such file or folder")
        }
        guard isFolder.boolValue else {
            shards = [try SafetensorsFile(path: path)]
            names = shards[0].names
            otherFiles = []
            indexPath = nil
            skippedFiles = []
            location = Dictionary(names.map { ($0, 0) }, uniquingKeysWith: { first, _ in first })
            return
        }
        let contents: [String]
        do {
            contents = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw SafetensorsError(path, "cannot list the folder: \(plainReason(error))")
        }
        let indexNames = contents.filter { $0.hasSuffix(".safetensors.index.json") }
        guard indexNames.count <= 1 else {
            throw SafetensorsError(path, "\(indexNames.count) index files (\(indexNames.joined(separator: ", "))): keep only the one that belongs to the shards")
        }
        let indexName = indexNames.first
        var shardFiles: [String]
        var weightMap: [String: String] = [:]
        if let indexName {
            let indexFile = path + "/" + indexName
            indexPath = indexFile
            let data = try readFile(indexFile)
            let json: JSON
            do { json = try data.withUnsafeBytes { try JSON.parse($0) } } catch { throw SafetensorsError(indexFile, "\(error)") }
            guard case .object(let pairs)? = json["weight_map"] else { throw SafetensorsError(indexFile, "no weight_map object") }
            guard !pairs.isEmpty else { throw SafetensorsError(indexFile, "weight_map is empty: the index lists no tensors") }
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
        var others: [String] = [], skipped: [String] = []
        for name in contents where !shardSet.contains(name) && name != indexName && !name.hasSuffix(".safetensors") {
            // stat follows symlinks: a hub cache's links to blobs count as the files they name.
            var info = stat()
            if stat(path + "/" + name, &info) != 0 {
                skipped.append("\(name) (a broken link)")
            } else if (info.st_mode & S_IFMT) == S_IFREG {
                others.append(name)
            } else if (info.st_mode & S_IFMT) != S_IFDIR {
                skipped.append("\(name) (\(fileKindText(info.st_mode)))")
            }
        }
        otherFiles = others
        skippedFiles = skipped
    }

    /// `base` with `adaptation`'s tensors in place of (or beside) its own; `path` names it in messages.
    init(path: String, adapting base: Checkpoint, with adaptation: Adaptation) {
        self.path = path
        shards = base.shards
        names = base.names + adaptation.addedNames
        otherFiles = base.otherFiles
        indexPath = base.indexPath
        skippedFiles = base.skippedFiles
        location = base.location
        filesFolder = base.filesFolder
        self.adaptation = adaptation
    }

    public func contains(_ name: String) -> Bool { location[name] != nil || adaptation?.info(name) != nil }

    public func info(_ name: String) -> TensorInfo? {
        if let info = adaptation?.info(name) { return info }
        return location[name].flatMap { shards[$0].info(name) }
    }

    /// The shard file holding `name`.
    public func shard(of name: String) -> SafetensorsFile? { location[name].map { shards[$0] } }

    /// A zero-copy view of tensor `name`.
    public func tensor(_ name: String) throws -> Tensor {
        if let adaptation, let tensor = try adaptation.tensor(name, in: self) { return tensor }
        guard let index = location[name] else { throw SafetensorsError(path, "no tensor named \"\(name)\"") }
        return try shards[index].tensor(name)
    }

    /// Lets go of the resident pages of tensor `name` (see `MappedFile.releasePages`).
    public func releasePages(of name: String) {
        guard let shard = shard(of: name), let info = shard.info(name) else { return }
        shard.mapping.releasePages(shard.dataOffset + info.begin ..< shard.dataOffset + info.end)
    }

    /// Copies config and tokenizer files (everything that is not a shard) into `folder`,
    /// by content: a symlink becomes a copy of the file it points to.
    public func copyOtherFiles(to folder: String) throws {
        for file in otherFiles {
            let target = folder + "/" + file
            unlink(target)
            try copyFileContents(from: filesFolder + "/" + file, to: target)
        }
    }

    public var totalBytes: Int { names.reduce(0) { $0 + (info($1)?.byteCount ?? 0) } }
}
