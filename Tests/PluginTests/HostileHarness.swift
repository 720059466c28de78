import Foundation
import LopperCore
import LopperIO
import XCTest

/// One hostile invocation of the real binary and what must hold afterwards: it fails
/// with a status from 1 to 127, stderr is one line naming `culprit`, every file under
/// `inputs` is byte-identical (hashed before and after), and nothing new appears under
/// `watched` (the output's parent; hidden temporaries included).
struct HostileCase {
    var name: String
    var arguments: [String]
    var culprit: String
    var inputs: [String]
    var watched: [String]
    var environment: [String: String] = [:]
    var directory: String? = nil
}

enum HostileHarness {
    /// Runs `hostile` and records every broken promise as a failure naming the case.
    static func expectFailure(_ hostile: HostileCase, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = fingerprint(hostile.inputs), listed = listing(hostile.watched)
        let run = try self.run(hostile.arguments, environment: hostile.environment, directory: hostile.directory)
        let label = "[\(hostile.name)] lopper \(hostile.arguments.joined(separator: " "))"
        XCTAssertTrue(run.status > 0 && run.status < 128, "\(label): exit status \(run.status)\n\(run.error)", file: file, line: line)
        expectOneLine(run.error, naming: hostile.culprit, label, file: file, line: line)
        expectUnchanged(hostile, before: before, listed: listed, label, file: file, line: line)
    }

    static func expectOneLine(_ error: String, naming culprit: String, _ label: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        let lines = error.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "\(label): stderr is not one line:\n\(error)", file: file, line: line)
        XCTAssertTrue(error.contains(culprit), "\(label): stderr does not name '\(culprit)':\n\(error)", file: file, line: line)
        XCTAssertFalse(error.contains("NSCocoaErrorDomain") || error.contains("Error Domain="),
                       "\(label): raw Foundation error:\n\(error)", file: file, line: line)
    }

    static func expectUnchanged(_ hostile: HostileCase, before: [String: UInt64], listed: Set<String>, _ label: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        let after = fingerprint(hostile.inputs)
        for (path, hash) in before where after[path] != hash {
            XCTFail("\(label): input \(path) changed", file: file, line: line)
        }
        for path in Set(after.keys).subtracting(before.keys) { XCTFail("\(label): new file inside an input: \(path)", file: file, line: line) }
        let new = listing(hostile.watched).subtracting(listed)
        XCTAssertTrue(new.isEmpty, "\(label): left behind: \(new.sorted())", file: file, line: line)
    }

    /// FNV-1a 64 of every regular file under `paths` (following links), by path.
    static func fingerprint(_ paths: [String]) -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for path in paths {
            let below = ((try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 }
            for file in [path] + below where isRegularFile(file) {
                guard let data = try? readFile(file) else { continue }
                // FNV-1a over 8-byte words (fast enough for the signal tests' large pairs), then the tail.
                var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(data.count)
                data.withUnsafeBytes { raw in
                    let words = raw.count / 8
                    for index in 0..<words { hash = (hash ^ raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) &* 0x100_0000_01b3 }
                    for index in (words * 8)..<raw.count { hash = (hash ^ UInt64(raw[index])) &* 0x100_0000_01b3 }
                }
                result[file] = hash
            }
        }
        return result
    }

    /// Every entry under `folders`, hidden ones included.
    static func listing(_ folders: [String]) -> Set<String> {
        var entries = Set<String>()
        for folder in folders {
            entries.insert(folder + (FileManager.default.fileExists(atPath: folder) ? "" : " (absent)"))
            for entry in (try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? [] { entries.insert(folder + "/" + entry) }
        }
        return entries
    }

    /// Runs the binary; a run that outlives `timeout` seconds (a hang) is killed and fails.
    static func run(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                    timeout: Double = 120) throws -> (status: Int32, output: String, error: String) {
        let process = try start(arguments, environment: environment, directory: directory)
        return try finish(process, timeout: timeout)
    }

    static func start(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: LopperBinary.path) else {
            throw XCTSkip("\(LopperBinary.path) is not built")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LopperBinary.path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        return process
    }

    static func finish(_ process: Process, timeout: Double) throws -> (status: Int32, output: String, error: String) {
        let out = process.standardOutput as! Pipe, err = process.standardError as! Pipe
        var output = Data(), error = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { output = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { error = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("lopper \((process.arguments ?? []).joined(separator: " ")) hung for \(timeout) s")
            return (-1, "", "")
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }

    /// A fresh temporary folder.
    static func folder(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "lopper-hostile-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes a safetensors file by hand: `tensors` as (name, shape, byte) with every byte
    /// of the data set to `byte` (F32), and optional raw header JSON for malformed cases.
    static func writeSafetensors(_ path: String, _ tensors: [(String, [Int], UInt8)]) throws {
        var members: [String] = [], data = Data(), offset = 0
        for (name, shape, byte) in tensors {
            let bytes = shape.reduce(4, *)
            let escaped = name.unicodeScalars.map { $0.value < 0x20 ? String(format: "\\u%04x", $0.value) : String($0) }.joined()
            members.append("\"\(escaped)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            data.append(Data(repeating: byte, count: bytes))
            offset += bytes
        }
        var header = Data(("{" + members.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(header)
        file.append(data)
        FileManager.default.createFile(atPath: path, contents: file)
    }

    /// A base / fine-tuned pair of folders `root/base`, `root/ft` with `names` ([rows, cols]
    /// F32 each; base 0, fine-tuned 0x3C bytes) and a config.json and tokenizer.json.
    static func pair(in root: String, names: [String], rows: Int = 8, cols: Int = 16) throws -> (base: String, ft: String) {
        for (which, byte) in [("base", UInt8(0)), ("ft", UInt8(0x3C))] {
            let folder = root + "/" + which
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try writeSafetensors(folder + "/model.safetensors", names.map { ($0, [rows, cols], byte) })
            try Data("{\"model_type\": \"llama\"}\n".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
            try Data("{}\n".utf8).write(to: URL(fileURLWithPath: folder + "/tokenizer.json"))
        }
        return (root + "/base", root + "/ft")
    }
}
