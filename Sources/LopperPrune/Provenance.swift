import Foundation
import LopperCore
import LopperIO

/// Where a method's code came from, as an output records it: enough to name the exact
/// code (SHA-256 of the source that ran) and, when small, to run it again.
public struct MethodProvenance: Sendable {
    /// `bundled`, `user`, `LOPPER_PLUGIN_PATH` or `path` (a file given on the command line).
    public var origin: String
    public var path: String
    public var sha256: String
    public var source: String

    public init(origin: String, path: String, source: String) {
        self.origin = origin; self.path = path; self.source = source
        sha256 = SHA256.hex(source)
    }
}

/// How a run was made, as its output's `__metadata__` records it (every value a string,
/// as safetensors wants; structured ones are sorted-key JSON), and read back by
/// `lopper reproduce`. Keys: `lopper.version`, `method`, `method_version`,
/// `method_sha256`, `method_origin`, `method_path`, `method_source` (zlib + base64,
/// when the source is at most `embeddedSourceLimit` bytes) and `method_source_size`,
/// `parameters` (typed JSON: defaults and settings), `parameter_types`, `settings` (the
/// `--set` arguments as written, in order), `seed`, `output`, `include`, `exclude`,
/// `dtype`, `shard_size`, `calibration_sha256`, `command_line`.
public struct RunProvenance: Sendable {
    public static let embeddedSourceLimit = 256 << 10

    public var lopperVersion: String
    public var method: String
    public var methodVersion: String
    public var methodProvenance: MethodProvenance?
    public var parameters: [String: ParamValue]
    public var parameterTypes: [String: String]
    public var settings: [String]
    public var seed: UInt64
    public var output: String
    public var include: [String]
    public var exclude: [String]
    public var dtype: String?
    public var shardSize: Int?
    public var calibrationSHA256: String?
    public var commandLine: [String]

    /// What a pruner is about to run.
    init(configuration: PruneConfiguration, method: PruneMethod, parameters: [String: ParamValue]) throws {
        lopperVersion = configuration.lopperVersion
        self.method = method.name
        methodVersion = method.version
        methodProvenance = method.provenance
        self.parameters = parameters
        parameterTypes = Dictionary(method.schema.specs.map { ($0.name, $0.type.rawValue) }, uniquingKeysWith: { first, _ in first })
        settings = configuration.settings.map(\.written)
        seed = configuration.seed
        output = configuration.sparse == nil ? configuration.output.rawValue : "sparse"
        include = configuration.selection.include.map(\.pattern)
        exclude = configuration.selection.exclude.map(\.pattern)
        dtype = configuration.dtype?.name
        shardSize = configuration.shardSize
        calibrationSHA256 = try configuration.calibrationPath.map { try SHA256.hex(file: $0) }
        commandLine = configuration.commandLine
    }

    public var metadata: [String: String] {
        var values: [String: String] = [
            "lopper.version": lopperVersion,
            "lopper.method": method,
            "lopper.method_version": methodVersion,
            "lopper.parameters": ParamValue.json(parameters),
            "lopper.parameter_types": Self.json(parameterTypes),
            "lopper.settings": Self.json(settings),
            "lopper.seed": String(seed),
            "lopper.output": output,
            "lopper.include": Self.json(include),
            "lopper.exclude": Self.json(exclude),
            "lopper.command_line": Self.json(commandLine),
        ]
        if let dtype { values["lopper.dtype"] = dtype }
        if let shardSize { values["lopper.shard_size"] = String(shardSize) }
        if let calibrationSHA256 { values["lopper.calibration_sha256"] = calibrationSHA256 }
        if let code = methodProvenance {
            values["lopper.method_sha256"] = code.sha256
            values["lopper.method_origin"] = code.origin
            values["lopper.method_path"] = code.path
            let bytes = Data(code.source.utf8)
            if bytes.count <= Self.embeddedSourceLimit, let packed = try? Deflate.compress(bytes) {
                values["lopper.method_source"] = packed.base64EncodedString()
                values["lopper.method_source_size"] = String(bytes.count)
            }
        }
        return values
    }

    /// Reads a run back from an output's `__metadata__` (`file` names it in errors).
    public init(metadata: [String: String], file: String) throws {
        func required(_ key: String) throws -> String {
            guard let value = metadata["lopper." + key] else {
                throw PruneError("\(file): its __metadata__ has no lopper.\(key): not written by lopper prune, or by a Lopper too old to record how")
            }
            return value
        }
        func list(_ key: String) throws -> [String] {
            guard let text = metadata["lopper." + key] else { return [] }
            guard let values = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw PruneError("\(file): lopper.\(key) is not a JSON list of strings")
            }
            return values
        }
        lopperVersion = try required("version")
        method = try required("method")
        methodVersion = try required("method_version")
        guard let seed = UInt64(try required("seed")) else { throw PruneError("\(file): lopper.seed is not a seed") }
        self.seed = seed
        output = try required("output")
        guard let settings = metadata["lopper.settings"] else {
            throw PruneError("\(file): its __metadata__ has no lopper.settings: written by a Lopper that did not record its settings")
        }
        guard let parsed = try? JSONDecoder().decode([String].self, from: Data(settings.utf8)) else {
            throw PruneError("\(file): lopper.settings is not a JSON list of strings")
        }
        self.settings = parsed
        parameters = (metadata["lopper.parameters"].flatMap { try? JSONDecoder().decode([String: ParamValue].self, from: Data($0.utf8)) }) ?? [:]
        parameterTypes = (metadata["lopper.parameter_types"].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }) ?? [:]
        include = try list("include")
        exclude = try list("exclude")
        commandLine = try list("command_line")
        dtype = metadata["lopper.dtype"]
        shardSize = try metadata["lopper.shard_size"].map {
            guard let size = Int($0), size > 0 else { throw PruneError("\(file): lopper.shard_size is not a size") }
            return size
        }
        calibrationSHA256 = metadata["lopper.calibration_sha256"]
        methodProvenance = nil
        if let sha256 = metadata["lopper.method_sha256"] {
            var source = ""
            if let packed = metadata["lopper.method_source"], let size = metadata["lopper.method_source_size"].flatMap(Int.init) {
                guard let data = Data(base64Encoded: packed), let text = String(data: try Deflate.decompress(data, expectedSize: size), encoding: .utf8) else {
                    throw PruneError("\(file): lopper.method_source is not zlib-compressed UTF-8 text in base64")
                }
                source = text
            }
            methodProvenance = MethodProvenance(origin: metadata["lopper.method_origin"] ?? "path", path: metadata["lopper.method_path"] ?? "", source: source)
            methodProvenance?.sha256 = sha256
        }
    }

    /// The recorded method source, when it was embedded and still hashes as recorded.
    public var embeddedSource: String? {
        guard let code = methodProvenance, !code.source.isEmpty, SHA256.hex(code.source) == code.sha256 else { return nil }
        return code.source
    }

    /// The configuration that re-runs this on `base` and `finetuned`, without writing.
    public func configuration(base: String, finetuned: String, calibration: String?) throws -> PruneConfiguration {
        var configuration = PruneConfiguration(basePath: base, finetunedPath: finetuned, outputPath: "")
        guard let mode = DeltaOutput(rawValue: output) else {
            throw PruneError("lopper reproduce cannot re-run output mode '\(output)'\(output == "sparse" ? " (apply it, then reproduce the merged run)" : "")")
        }
        configuration.output = mode
        configuration.seed = seed
        configuration.settings = try settings.map(Setting.init(parsing:))
        configuration.selection = TensorSelection(include: include, exclude: exclude)
        configuration.dtype = try dtype.map {
            guard let parsed = DType(parsing: $0) else { throw PruneError("lopper.dtype '\($0)' is not a dtype") }
            return parsed
        }
        configuration.shardSize = shardSize
        configuration.calibrationPath = calibration
        configuration.lopperVersion = lopperVersion
        return configuration
    }

    static func json<Value: Encodable>(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}

extension Setting {
    /// The setting as `--set` takes it.
    public var written: String { (glob.map { $0.pattern + ":" } ?? "") + key + "=" + text }
}
