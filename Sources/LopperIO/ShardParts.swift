import Foundation
import LopperCore
#if canImport(Glibc)
import Glibc
#endif

/// Part `number` of `count` of a sharded output (`lopper prune --part i/n`), so that one
/// prune can run as an array job on a cluster. The shard layout comes from the plan alone,
/// so every part computes the same one; part i writes shards floor((i-1)S/n) up to
/// floor(iS/n) of the S shards (a contiguous run; part sizes differ by at most one shard)
/// into its own folder `OUT.part-I-of-N`, complete or absent like any output.
/// `ShardParts.merge` then joins the parts into OUT, byte for byte the single run's folder.
public struct ShardPart: Sendable, Equatable, CustomStringConvertible {
    public let number: Int
    public let count: Int

    public init(number: Int, count: Int) { self.number = number; self.count = count }

    public init(parsing text: String) throws {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2, let number = Int(pieces[0]), let count = Int(pieces[1]) else {
            throw OutputError("--part \(text): write it as i/n, e.g. --part 2/8 for part 2 of 8")
        }
        guard (1...100_000).contains(count) else { throw OutputError("--part \(text): the number of parts must be from 1 to 100000") }
        guard (1...count).contains(number) else { throw OutputError("--part \(text): the part number must be from 1 to \(count)") }
        self.init(number: number, count: count)
    }

    public var description: String { "\(number)/\(count)" }

    /// The shards (indices into a layout of `shardCount`) this part writes.
    public func shards(of shardCount: Int) -> Range<Int> {
        (number - 1) * shardCount / count ..< number * shardCount / count
    }

    /// Refuses more parts than shards: every part writes at least one.
    public func check(shardCount: Int) throws {
        guard shardCount >= count else {
            let shards = shardCount == 1 ? "1 shard" : "\(shardCount) shards"
            throw OutputError("--part \(self): the output has \(shards), so at most \(shardCount) part\(shardCount == 1 ? "" : "s"); use fewer parts or a smaller --shard-size")
        }
    }

    /// The folder this part of output `folder` is written to: `FOLDER.part-I-of-N` beside it.
    public func folder(for output: String) -> String {
        var trimmed = output
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        return "\(trimmed).part-\(number)-of-\(count)"
    }

    /// `arguments` without `--part VALUE` (or `--part=VALUE`): what a part records as its
    /// command line, so that the joined parts carry the single run's.
    public static func removing(from arguments: [String]) -> [String] {
        var kept: [String] = [], skipNext = false
        for argument in arguments {
            if skipNext { skipNext = false; continue }
            if argument == "--part" { skipNext = true; continue }
            if argument.hasPrefix("--part=") { continue }
            kept.append(argument)
        }
        return kept
    }
}

/// What a part folder records beside its shards for `merge-parts`: the whole layout and
/// the run's metadata, so parts of different runs, settings or inputs are never joined.
struct PartManifest: Codable, Equatable {
    static let fileName = "lopper-part.json"
    static let formatName = "lopper-part/1"

    struct Entry: Codable, Equatable {
        var name: String
        var dtype: String
        var shape: [Int]
    }

    var format: String
    var part: Int
    var parts: Int
    var stem: String
    var layout: [[Entry]]
    var metadata: [String: String]

    var entries: [[SafetensorsWriter.Entry]] {
        get throws {
            try layout.map { shard in
                try shard.map { entry in
                    guard let dtype = DType(parsing: entry.dtype), entry.shape.allSatisfy({ $0 >= 0 }) else {
                        throw OutputError("tensor \"\(entry.name)\" has dtype \(entry.dtype) or shape \(entry.shape) that Lopper does not write")
                    }
                    return SafetensorsWriter.Entry(name: entry.name, dtype: dtype, shape: entry.shape)
                }
            }
        }
    }
}

public enum ShardParts {
    /// The writer of `part` of the output `folder` laid out as `layout` (shards of the
    /// whole output; empty ones are dropped as `ShardedWriter` drops them), lined up with `source`.
    public static func writer(folder: String, layout: [[SafetensorsWriter.Entry]], part: ShardPart,
                              metadata: [String: String], overwrite: Bool, source: Checkpoint? = nil) throws -> ShardedWriter {
        let shards = layout.filter { !$0.isEmpty }
        try part.check(shardCount: shards.count)
        let manifest = PartManifest(format: PartManifest.formatName, part: part.number, parts: part.count, stem: "model",
                                    layout: shards.map { $0.map { .init(name: $0.name, dtype: $0.dtype.name, shape: $0.shape) } },
                                    metadata: metadata)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(manifest) + Data("\n".utf8)
        return try ShardedWriter(folder: part.folder(for: folder), shards: shards, metadata: metadata, overwrite: overwrite,
                                 part: (part.shards(of: shards.count), [(PartManifest.fileName, data)]), source: source)
    }

    /// The part folders of `output` found beside it (`OUTPUT.part-I-of-N`).
    public static func discover(for output: String) -> [String] {
        let probe = ShardPart(number: 1, count: 1).folder(for: output)
        let prefix = String(probe.dropLast("1-of-1".count))
        let parent = (prefix as NSString).deletingLastPathComponent
        let stem = (prefix as NSString).lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.isEmpty ? "." : parent)) ?? []
        return names.filter { name in
            guard name.hasPrefix(stem) else { return false }
            let pieces = name.dropFirst(stem.count).split(separator: "-", omittingEmptySubsequences: false)
            return pieces.count == 3 && pieces[1] == "of" && Int(pieces[0]) != nil && Int(pieces[2]) != nil
        }.sorted().map { parent.isEmpty ? $0 : parent + "/" + $0 }
    }
}
