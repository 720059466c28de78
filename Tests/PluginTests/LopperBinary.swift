import Foundation
import XCTest

/// Runs the built `lopper` binary as a user would (Scripts/test builds it before the
/// tests): the release build, else the debug build; skips the test when neither exists.
enum LopperBinary {
    static var path: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let release = root.appendingPathComponent(".build/release/lopper").path
        let debug = root.appendingPathComponent(".build/debug/lopper").path
        return FileManager.default.isExecutableFile(atPath: release) || !FileManager.default.isExecutableFile(atPath: debug) ? release : debug
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("\(path) is not built (Scripts/test builds it first)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
