import Foundation
import LopperCore

/// Writes a Hugging Face checkpoint folder: tensors grouped into shards of at most
/// `maxShardBytes` (a new shard starts when the next tensor would not fit), named
/// `model-00001-of-00003.safetensors` with a `model.safetensors.index.json`, or a single
/// `model.safetensors` without index. The folder is built under a temporary sibling
/// name and renamed into place by `finish()`; on failure nothing is left behind.
public final class ShardedWriter {
    public let folder: String
    private let temporary: TemporaryPath
    public var temporaryFolder: String { temporary.path }
    public let shardNames: [String]
    private let plan: [[SafetensorsWriter.Entry]]
    private let metadata: [String: String]
    private let stem: String
    private let partFiles: [(name: String, data: Data)]?
    /// Per planned shard, where its data section starts modulo the block size (nil: anywhere).
    private let dataStarts: [Int?]
    private var shardIndex = 0
    private var positionInShard = 0
    private var current: SafetensorsWriter?
    private var finished = false

    public static let defaultShardBytes = 5_000_000_000

    public convenience init(folder: String, entries: [SafetensorsWriter.Entry], maxShardBytes: Int = defaultShardBytes,
                            metadata: [String: String] = [:], overwrite: Bool = false) throws {
        try self.init(folder: folder, shards: Self.layout(entries, maxShardBytes: maxShardBytes), metadata: metadata, overwrite: overwrite)
    }

    /// `entries` grouped into shards of at most `maxShardBytes`, in order.
    public static func layout(_ entries: [SafetensorsWriter.Entry], maxShardBytes: Int) -> [[SafetensorsWriter.Entry]] {
        var shards: [[SafetensorsWriter.Entry]] = [[]]
        var bytes = 0
        for entry in entries {
            if !shards[shards.count - 1].isEmpty && bytes + entry.byteCount > maxShardBytes {
                shards.append([]); bytes = 0
            }
            shards[shards.count - 1].append(entry)
            bytes += entry.byteCount
        }
        return shards
    }

    /// The file names of `count` shards: `STEM.safetensors` alone, else `STEM-00001-of-00003.safetensors`, ...
    public static func shardNames(count: Int, stem: String = "model") -> [String] {
        func pad(_ n: Int) -> String { let text = String(n); return String(repeating: "0", count: max(0, 5 - text.count)) + text }
        return count <= 1 ? ["\(stem).safetensors"] : (1...count).map { "\(stem)-\(pad($0))-of-\(pad(count)).safetensors" }
    }

    /// The text of `STEM.safetensors.index.json` for `shards` written as `names`.
    public static func indexText(shards: [[SafetensorsWriter.Entry]], names: [String]) -> String {
        var map: [(String, JSON)] = []
        var total = 0
        for (index, entries) in shards.enumerated() {
            for entry in entries { map.append((entry.name, .string(names[index]))); total += entry.byteCount }
        }
        return JSON.object([("metadata", .object([("total_size", .int(total))])), ("weight_map", .object(map))]).text + "\n"
    }

    /// Writes the tensors grouped exactly as `shards` (for example the layout of the
    /// checkpoint an output derives from). Empty groups are dropped. `stem` names the files
    /// (`adapter_model` for a PEFT adapter). `part` writes only some shards of the layout
    /// (`prune --part`), under the layout's names, with `files` in place of the index.
    /// Tensors that `source` holds alike are lined up with their input offsets (see `dataStarts`).
    public init(folder: String, shards: [[SafetensorsWriter.Entry]], metadata: [String: String] = [:],
                overwrite: Bool = false, stem: String = "model",
                part: (shards: Range<Int>, files: [(name: String, data: Data)])? = nil, source: Checkpoint? = nil) throws {
        let fileManager = FileManager.default
        self.folder = folder
        self.metadata = metadata
        var isFolder: ObjCBool = false
        if fileManager.fileExists(atPath: folder, isDirectory: &isFolder) {
            let empty = isFolder.boolValue && ((try? fileManager.contentsOfDirectory(atPath: folder))?.isEmpty ?? false)
            if !empty && !overwrite { throw SafetensorsError(folder, "output exists; choose another folder or pass --overwrite") }
        }
        let nonEmpty = shards.filter { !$0.isEmpty }
        let layout = nonEmpty.isEmpty ? [[]] : nonEmpty
        let names = Self.shardNames(count: layout.count, stem: stem)
        plan = part.map { Array(layout[$0.shards]) } ?? layout
        shardNames = part.map { Array(names[$0.shards]) } ?? names
        partFiles = part?.files
        dataStarts = Self.dataStarts(plan, source: source)
        self.stem = stem
        temporary = try Self.temporaryFolder(beside: folder)
    }

    /// A new, empty, registered temporary folder beside `folder` (its parents created), to
    /// build an output in and rename into place.
    public static func temporaryFolder(beside folder: String) throws -> TemporaryPath {
        let temporary = TemporaryPath(beside: folder)
        try? FileManager.default.removeItem(atPath: temporary.path)
        let parent = URL(fileURLWithPath: temporary.path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            temporary.release()
            throw SafetensorsError(folder, "cannot create the folder \(parent): \(plainReason(error))")
        }
        guard mkdir(temporary.path, 0o755) == 0 else {
            let why = String(cString: strerror(errno))
            temporary.release()
            throw SafetensorsError(folder, "cannot create the output folder: \(why)")
        }
        return temporary
    }

    deinit { if !finished { abandon() } }

    /// Per shard, the data start (modulo the block size, a multiple of 8) at which the most
    /// bytes of tensors that `source` holds with the same dtype and shape lie at their input
    /// offsets modulo the block size, so that those copied unchanged skip the staging copy;
    /// nil where that would be under `StagedFileOutput.directSpanBytes`. A function of the
    /// layouts only: every run and part of a run pads alike.
    static func dataStarts(_ shards: [[SafetensorsWriter.Entry]], source: Checkpoint?) -> [Int?] {
        guard let source else { return shards.map { _ in nil } }
        let block = StagedFileOutput.alignment
        return shards.map { entries in
            var bytesAt: [Int: Int] = [:], offset = 0
            for entry in entries {
                defer { offset += entry.byteCount }
                guard let file = source.shard(of: entry.name), let info = file.info(entry.name),
                      info.dtype == entry.dtype, info.shape == entry.shape else { continue }
                let start = ((file.dataOffset + info.begin - offset) % block + block) % block
                if start % 8 == 0 { bytesAt[start, default: 0] += entry.byteCount }
            }
            guard let best = bytesAt.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) }),
                  best.value >= StagedFileOutput.directSpanBytes else { return nil }
            return best.key
        }
    }

    /// The next tensor's planned entry, or nil when all are written.
    public var nextEntry: SafetensorsWriter.Entry? {
        shardIndex < plan.count && positionInShard < plan[shardIndex].count ? plan[shardIndex][positionInShard] : nil
    }

    private func writer() throws -> SafetensorsWriter {
        if let current { return current }
        let writer = try SafetensorsWriter(path: temporaryFolder + "/" + shardNames[shardIndex], entries: plan[shardIndex],
                                           metadata: metadata, dataStart: dataStarts[shardIndex])
        current = writer
        return writer
    }

    private func advance() throws {
        positionInShard += 1
        if positionInShard == plan[shardIndex].count {
            try current?.finish()
            current = nil
            shardIndex += 1
            positionInShard = 0
        }
    }

    /// Writes the next planned tensor.
    public func write(_ tensor: Tensor, name: String) throws {
        do { try WriteCancellation.check(folder); try writer().write(tensor, name: name); try advance() } catch { abandon(); throw error }
    }

    /// Writes the next planned tensor's bytes unchanged.
    public func writeRaw(_ bytes: UnsafeRawBufferPointer) throws {
        do { try WriteCancellation.check(folder); try writer().writeRaw(bytes); try advance() } catch { abandon(); throw error }
    }

    /// Writes every planned tensor in plan order, each made by `tensor` just before it is
    /// written, then finishes. The one streaming loop of prune, apply and `lopper.save`; a
    /// failure anywhere leaves nothing behind. Writing overlaps computing: tensor i is written
    /// by a writer thread while `tensor` makes tensor i + 1 (one write in flight, so two
    /// outputs at most are in memory); `written` runs on that thread after each write, to drop
    /// input pages. `progress` gets (tensors done, bytes done, the next tensor's name).
    public func writeAll(copying checkpoint: Checkpoint? = nil, progress: ((Int, Int, String) -> Void)? = nil,
                         tensor: (SafetensorsWriter.Entry) throws -> Tensor,
                         written: @escaping (SafetensorsWriter.Entry) -> Void = { _ in }) throws {
        let writes = BackgroundWrite()
        var done = 0, bytes = 0
        for entry in plan.joined() {
            progress?(done, bytes, entry.name)
            let value: Tensor
            do { value = try tensor(entry) } catch { _ = writes.wait(); abandon(); throw error }
            if let error = writes.wait() { abandon(); throw error }
            writes.start { [self] in
                try write(value, name: entry.name)
                written(entry)
            }
            done += 1
            bytes += entry.byteCount
        }
        if let error = writes.wait() { abandon(); throw error }
        try finish(copying: checkpoint)
        progress?(done, bytes, "")
    }

    /// Writes the index, copies `extraFiles` (folder-relative path pairs) and renames into place.
    public func finish(copying checkpoint: Checkpoint? = nil) throws {
        do {
            guard nextEntry == nil && shardIndex >= plan.count || plan == [[]] else {
                throw SafetensorsError(folder, "not every planned tensor was written")
            }
            if plan == [[]] { _ = try writer(); try current?.finish(); current = nil }
            if let partFiles {
                for file in partFiles { try writeFile(file.data, to: temporaryFolder + "/" + file.name) }
            } else if shardNames.count > 1 {
                try writeFile(Data(Self.indexText(shards: plan, names: shardNames).utf8), to: temporaryFolder + "/\(stem).safetensors.index.json")
            }
            try checkpoint?.copyOtherFiles(to: temporaryFolder)
            try WriteCancellation.check(folder)
            try moveIntoPlace(temporary, over: folder)
            finished = true
        } catch {
            abandon()
            throw error
        }
    }

    /// Removes the partial output.
    public func abandon() {
        current?.abandon()
        current = nil
        try? FileManager.default.removeItem(atPath: temporaryFolder)
        temporary.release()
        finished = true
    }
}

/// One write at a time on a thread of its own: `start` runs a write there, `wait` blocks
/// until it is done and returns its error, if any.
private final class BackgroundWrite: @unchecked Sendable {
    private let queue = DispatchQueue(label: "lopper.writer")
    private let idle = DispatchSemaphore(value: 1)
    private var failure: Error?
    /// The write in flight (one at a time: `idle` guards it).
    private var job: (() throws -> Void)?

    func start(_ work: @escaping () throws -> Void) {
        idle.wait()
        job = work
        queue.async { [self] in
            do { try job?() } catch { failure = error }
            // Drop the job (and the tensor it holds) before the next wait returns: a caller
            // that finishes must find every mapping it wrote from released.
            job = nil
            idle.signal()
        }
    }

    /// Waits for the write in flight; its error (then later writes are not started).
    func wait() -> Error? {
        idle.wait()
        defer { idle.signal() }
        return failure
    }
}
