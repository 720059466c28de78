import ArgumentParser
import Foundation
import LopperIO
import LopperLua
import LopperPrune

struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run the pruning that made an output and check that it comes out byte for byte the same.",
        discussion: """
        Reads how OUT was made from its __metadata__ (method, version and SHA-256 of the plugin, settings, seed, \
        output mode, selection, dtype, Lopper version), runs the same thing again on --base and --finetuned tensor \
        by tensor and compares each tensor with OUT's, writing nothing. The plugin is looked up as name@version; \
        when it is not installed, the source recorded in OUT runs (--recorded-source always runs that one). \
        On a difference it names the first tensor that differs and what changed since: the Lopper version, the \
        plugin's code, the calibration file, or else the inputs.

        Example:
          lopper prune --base b --finetuned f --method dare --set rate=0.9 --seed 3 --out pruned
          lopper reproduce pruned --base b --finetuned f
        """)

    @Argument(help: "An output of `lopper prune`.") var out: String
    @OptionGroup(title: "Model pair") var pair: ModelPairOptions
    @Option(help: "The calibration statistics the run used (checked against the recorded SHA-256).") var calibration: String?
    @Option(help: "Run this method (name, name@version or .lua file) instead of the recorded one.") var method: String?
    @Flag(help: "Run the plugin source recorded in OUT even when the plugin is installed.") var recordedSource = false
    @OptionGroup(title: "Threads") var threads: ThreadOptions

    func run() throws {
        try reportingErrors {
            threads.apply()
            let output = try Checkpoint(path: out)
            let record = try RunProvenance(metadata: output.shards.first?.metadata ?? [:], file: out)
            let plugin = try method.map(PluginCatalog.load) ?? recordedPlugin(record)
            var changes: [String] = []
            if record.lopperVersion != lopperVersion {
                changes.append("OUT was made by Lopper \(record.lopperVersion), this is \(lopperVersion)")
            }
            let recordedHash = record.methodProvenance?.sha256, currentHash = plugin.provenance?.sha256
            if plugin.name != record.method || plugin.version != record.methodVersion {
                changes.append("OUT was made by \(record.method) \(record.methodVersion), this runs \(plugin.name) \(plugin.version)")
            }
            if let recordedHash, let currentHash, recordedHash != currentHash {
                changes.append("plugin \(plugin.name) \(plugin.version) (\(plugin.path)) has SHA-256 \(currentHash.prefix(12)), OUT was made by code with SHA-256 \(recordedHash.prefix(12)): the plugin's code changed")
            }
            if let recordedCalibration = record.calibrationSHA256 {
                guard let calibration else {
                    throw ValidationError("\(out) was made with calibration statistics (SHA-256 \(recordedCalibration.prefix(12))); pass them with --calibration FILE")
                }
                if try SHA256.hex(file: calibration) != recordedCalibration { changes.append("--calibration \(calibration) is not the file the run used") }
            }
            for change in changes { fputs("lopper: note: \(terminalSafe(change))\n", stderr) }
            let configuration = try record.configuration(base: pair.base, finetuned: pair.finetuned, calibration: calibration)
            let pruner = try Pruner(configuration, method: plugin)
            LuaInterrupt.installHandler()
            defer { LuaInterrupt.clear() }
            switch try pruner.verify(against: output, progress: Progress(tensors: pruner.plan.count, bytes: pruner.plan.reduce(0) { $0 + $1.byteCount })) {
            case .identical(let count):
                print("reproduced \(out): \(count) tensors byte-identical (\(plugin.name) \(plugin.version), SHA-256 \((currentHash ?? "-").prefix(12)), seed \(record.seed), Lopper \(lopperVersion))")
            case .differs(let tensor, let detail):
                let why = changes.isEmpty
                    ? "same Lopper version, plugin code and settings: the --base or --finetuned checkpoint differs from the one the run used, or the method is not deterministic"
                    : changes.joined(separator: "; ")
                throw ValidationError("\(out) is not reproduced: tensor \"\(tensor)\" differs (\(detail)); \(why)")
            }
        }
    }

    /// The plugin the record names: installed as name@version (or at its recorded
    /// path), else the source recorded in the output.
    private func recordedPlugin(_ record: RunProvenance) throws -> Plugin {
        let embedded = record.embeddedSource
        if !recordedSource {
            if record.methodProvenance?.origin == "path", let path = record.methodProvenance?.path, FileManager.default.fileExists(atPath: path) {
                return try PluginCatalog.load(path)
            }
            if let plugin = try? PluginCatalog.load(record.method + "@" + record.methodVersion) { return plugin }
            guard embedded != nil else {
                throw ValidationError("method \(record.method) \(record.methodVersion) is not installed and \(out) does not hold its source")
            }
            fputs("lopper: note: \(record.method) \(record.methodVersion) is not installed; running the source recorded in \(terminalSafe(out))\n", stderr)
        }
        guard let embedded else { throw ValidationError("\(out) does not hold the source of \(record.method) (too large, or not recorded)") }
        let plugin = try Plugin(source: embedded, chunkName: "=" + record.method + ".lua", path: out + " (recorded source)")
        plugin.origin = record.methodProvenance?.origin ?? "path"
        return plugin
    }
}
