import Foundation
import XCTest

/// The first Ctrl-C stops a running script or plugin within a second, even inside C
/// code (pattern backtracking) or a loop of kernel calls (issue 10, class 4). Drives
/// the real binary: `lopper run` exits 130 when interrupted; `lopper prune` fails
/// with a status below 128 (or 130) and leaves no output.
final class InterruptTests: XCTestCase {
    private static let hostileLoops = [
        "string.rep('a', 5000):find('.-.-.-.-.-b')",
        "local t = lopper.zeros({2048, 2048}); for i = 1, 1e6 do t:abs() end",
        "xpcall(function() while true do end end, function() while true do end end)",
        "while true do pcall(function() while true do end end) end",
    ]

    /// Starts `lopper arguments`, sends one SIGINT after `delay` seconds and returns the
    /// exit status, the seconds from the signal to the exit, and stderr.
    private func interruptOnce(_ arguments: [String], after delay: TimeInterval = 1) throws -> (Int32, TimeInterval, String) {
        guard FileManager.default.isExecutableFile(atPath: LopperBinary.path) else {
            throw XCTSkip("\(LopperBinary.path) is not built")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LopperBinary.path)
        process.arguments = arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        XCTAssertTrue(process.isRunning, "\(arguments) ended before the signal")
        let signalled = Date()
        kill(process.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let elapsed = Date().timeIntervalSince(signalled)
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return (-1, elapsed, "still running 10 s after SIGINT")
        }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationReason, .exit, "killed by a signal, not a clean exit")
        return (process.terminationStatus, elapsed, message)
    }

    func testFirstCtrlCStopsAScript() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-interrupt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (number, loop) in Self.hostileLoops.enumerated() {
            let script = folder + "/loop\(number).lua"
            try loop.write(toFile: script, atomically: true, encoding: .utf8)
            let (status, elapsed, message) = try interruptOnce(["run", script])
            XCTAssertEqual(status, 130, "\(loop): \(message)")
            XCTAssertLessThan(elapsed, 2, loop)
            XCTAssertTrue(message.contains("interrupted"), "\(loop): \(message)")
        }
    }

    func testFirstCtrlCStopsAPluginDuringPrune() throws {
        let fixture = try PipelineFixture()
        defer { fixture.remove() }
        for (number, loop) in Self.hostileLoops.enumerated() {
            let plugin = fixture.folder + "/hostile\(number).lua"
            try "return { name = 'hostile', version = '1', api = 2, summary = 's', prune = function(d) \(loop) return d end }"
                .write(toFile: plugin, atomically: true, encoding: .utf8)
            let out = fixture.folder + "/out\(number)"
            let (status, elapsed, message) = try interruptOnce(["prune", "--base", fixture.base, "--finetuned", fixture.finetuned,
                                                                "--method", plugin, "--out", out])
            XCTAssertTrue(status == 130 || (status > 0 && status < 128), "\(loop): status \(status): \(message)")
            XCTAssertLessThan(elapsed, 2, loop)
            XCTAssertTrue(message.contains("interrupted"), "\(loop): \(message)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(loop): output left behind")
        }
    }
}
