import Foundation
import LopperCore
#if canImport(Glibc)
import Glibc
#endif

extension ShardParts {
    /// Joins the folders of every part of one `prune --part` run into `output`: their shards
    /// (hard links where the file system allows, else copies), the index, and the other
    /// files (config, tokenizer) of part 1, built under a temporary name and moved into
    /// place when complete. Refuses, naming the folder, a missing or doubled part, parts
    /// of another count, layout or run (any metadata difference), and a shard that does not
    /// hold what its manifest lists. The caller checks `output` with `OutputGuard` first.
    /// Returns the number of shards and their bytes.
    @discardableResult
    public static func merge(_ folders: [String], into output: String) throws -> (shards: Int, bytes: Int) {
        let parts = try folders.map { ($0, try readManifest(in: $0)) }.sorted { $0.1.part < $1.1.part }
        guard let (firstFolder, first) = parts.first else {
            throw OutputError("no part folders given, and none found beside \(output) (\(ShardPart(number: 1, count: 2).folder(for: output)), ...)")
        }
        for (index, (folder, manifest)) in parts.enumerated() {
            guard manifest.parts == first.parts else {
                throw OutputError("\(folder) is part \(manifest.part) of \(manifest.parts), but \(firstFolder) is part \(first.part) of \(first.parts): parts of different runs")
            }
            if index > 0, parts[index - 1].1.part == manifest.part {
                throw OutputError("\(parts[index - 1].0) and \(folder) are both part \(manifest.part) of \(manifest.parts)")
            }
            guard manifest.stem == first.stem, manifest.layout == first.layout else {
                throw OutputError("\(folder) (part \(manifest.part)) has another shard layout than \(firstFolder) (part \(first.part)): parts of different runs or inputs")
            }
            // The command line differs whenever anything does: name a more telling key first.
            let keys = Set(manifest.metadata.keys).union(first.metadata.keys).sorted { ($0 == commandLineKey ? 1 : 0, $0) < ($1 == commandLineKey ? 1 : 0, $1) }
            if let key = keys.first(where: { manifest.metadata[$0] != first.metadata[$0] }) {
                throw OutputError("\(folder) (part \(manifest.part)) is from another run than \(firstFolder) (part \(first.part)): their \(key) differs\(shortValues(manifest.metadata[key], first.metadata[key])); run every part with the same command apart from --part")
            }
        }
        let present = Set(parts.map(\.1.part))
        if let missing = (1...first.parts).first(where: { !present.contains($0) }) {
            throw OutputError("part \(missing) of \(first.parts) is missing (\(ShardPart(number: missing, count: first.parts).folder(for: output))): run lopper prune with --part \(missing)/\(first.parts) first")
        }
        let layout = try first.entries
        let names = ShardedWriter.shardNames(count: layout.count, stem: first.stem)
        var sources: [String] = []
        for (folder, manifest) in parts {
            for shard in ShardPart(number: manifest.part, count: manifest.parts).shards(of: layout.count) {
                let path = folder + "/" + names[shard]
                try checkShard(path, holds: layout[shard], metadata: first.metadata)
                sources.append(path)
            }
        }
        let bytes = try assemble(output, shards: zip(sources, names).map { ($0, $1) }, layout: layout, stem: first.stem, otherFilesOf: firstFolder)
        return (layout.count, bytes)
    }

    static let commandLineKey = "lopper.command_line"

    static func readManifest(in folder: String) throws -> PartManifest {
        let path = folder + "/" + PartManifest.fileName
        guard isRegularFile(path) else { throw OutputError("\(folder): not a part folder of lopper prune --part (no \(PartManifest.fileName))") }
        let manifest: PartManifest
        do { manifest = try JSONDecoder().decode(PartManifest.self, from: try readFile(path)) } catch let error as SafetensorsError {
            throw error
        } catch {
            throw OutputError("\(path): not a readable part manifest")
        }
        guard manifest.format == PartManifest.formatName else {
            throw OutputError("\(path): format \(manifest.format), this Lopper reads \(PartManifest.formatName)")
        }
        guard (1...100_000).contains(manifest.parts), (1...manifest.parts).contains(manifest.part), manifest.layout.count >= manifest.parts,
              !manifest.stem.isEmpty, !manifest.stem.contains("/") else {
            throw OutputError("\(path): part \(manifest.part) of \(manifest.parts) over \(manifest.layout.count) shards is not a valid part")
        }
        return manifest
    }

    private static func shortValues(_ a: String?, _ b: String?) -> String {
        let shown = [a, b].map { $0.map { $0.count <= 60 ? $0 : String($0.prefix(57)) + "..." } ?? "absent" }
        return " (\(shown[0]) against \(shown[1]))"
    }

    /// The shard must be the file a writer of `entries` with the run's metadata writes:
    /// the same header, byte for byte, and the data that header promises.
    private static func checkShard(_ path: String, holds entries: [SafetensorsWriter.Entry], metadata: [String: String]) throws {
        guard isRegularFile(path) else { throw OutputError("\(path): missing; the part folder is incomplete") }
        let file = try SafetensorsFile(path: path)
        let expected = Array(SafetensorsWriter.header(entries: entries, metadata: metadata).utf8)
        let header = UnsafeRawBufferPointer(start: file.mapping.base + 8, count: file.headerBytes)
        let dataBytes = entries.reduce(0) { $0 + $1.byteCount }
        guard header.elementsEqual(expected), file.mapping.length == file.dataOffset + dataBytes else {
            throw OutputError("\(path): does not hold the tensors and metadata its part manifest lists; run that part again")
        }
    }

    /// Builds `output` from the checked shards, under a temporary name.
    private static func assemble(_ output: String, shards: [(source: String, name: String)], layout: [[SafetensorsWriter.Entry]],
                                 stem: String, otherFilesOf folder: String) throws -> Int {
        let temporary = try ShardedWriter.temporaryFolder(beside: output)
        do {
            var bytes = 0
            for shard in shards {
                try WriteCancellation.check(output)
                let target = temporary.path + "/" + shard.name
                // A hard link shares the part's bytes without copying them (same file system).
                if link(shard.source, target) != 0 { try copyFileContents(from: shard.source, to: target) }
                var info = stat()
                if stat(target, &info) == 0 { bytes += Int(info.st_size) }
            }
            if shards.count > 1 {
                try writeFile(Data(ShardedWriter.indexText(shards: layout, names: shards.map(\.name)).utf8),
                              to: temporary.path + "/\(stem).safetensors.index.json")
            }
            let shardNames = Set(shards.map(\.name))
            let others = try FileManager.default.contentsOfDirectory(atPath: folder).filter {
                !$0.hasPrefix(".") && !shardNames.contains($0) && $0 != PartManifest.fileName && !$0.hasSuffix(".safetensors")
                    && isRegularFile(folder + "/" + $0)
            }
            for name in others.sorted() { try copyFileContents(from: folder + "/" + name, to: temporary.path + "/" + name) }
            try WriteCancellation.check(output)
            try moveIntoPlace(temporary, over: output)
            return bytes
        } catch {
            try? FileManager.default.removeItem(atPath: temporary.path)
            temporary.release()
            throw error
        }
    }
}
