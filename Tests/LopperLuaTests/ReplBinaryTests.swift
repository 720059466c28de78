import Foundation
import XCTest

/// `lopper repl` as a user runs it: piped standard input, and a real terminal driven
/// through tmux. Needs the built binary (.build/release/lopper; Scripts/test builds it).
final class ReplBinaryTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/release/lopper").path

    func requireBinary() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("\(Self.binary) is missing: run `swift build -c release --product lopper` (Scripts/test does) to test the REPL binary")
        }
        return Self.binary
    }

    /// Runs `lopper repl` with `input` on a pipe; returns (stdout, stderr, status).
    func runPiped(_ input: String, arguments: [String] = []) throws -> (String, String, Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try requireBinary())
        process.arguments = ["repl"] + arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self), process.terminationStatus)
    }

    func testPipedStatements() throws {
        let (out, err, status) = try runPiped("x = 1+1\nx\n")
        XCTAssertEqual(out, "2\n")
        XCTAssertEqual(err, "")
        XCTAssertEqual(status, 0)
    }

    func testPipedMultiLineErrorsAndTables() throws {
        let input = """
        function f(a)
          return a * 2, "two"
        end
        f(21)
        error("boom")
        {b = 1, a = {1, 2}}
        lopper.from_table{1, 0}

        """
        let (out, err, status) = try runPiped(input)
        XCTAssertEqual(out, "42\ttwo\n{a = {1, 2}, b = 1}\nTensor[2] F32 mean=0.5 std=0.5 min=0 max=1 nonzero=50%\n{1, 0}\n")
        XCTAssertTrue(err.hasPrefix("stdin:1: boom\nstack traceback:"), err)
        XCTAssertFalse(err.contains("\u{1B}["), "no colour without a terminal")
        XCTAssertEqual(status, 1, "a failed statement makes the exit status 1")
    }

    func testStartupBindingFailureIsOneLine() throws {
        let (_, err, status) = try runPiped("", arguments: ["/nonexistent/model.safetensors"])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(err.hasPrefix("lopper: error: "), err)
    }

    // MARK: - A real terminal (tmux)

    final class Terminal {
        /// A fresh server per session: a new session on a server that is still
        /// shutting down can fail to start.
        var sessions = 0
        var socket: String { folder + "/tmux-\(sessions)" }
        let tmux: String
        let folder: String
        init(tmux: String, folder: String) {
            self.tmux = tmux
            self.folder = folder
        }

        /// Runs tmux through the shell (popen: Foundation's Process waits forever for
        /// a client whose daemonized server inherited its descriptors).
        @discardableResult
        func run(_ arguments: [String], capture: Bool = false) -> String {
            let quoted = ([tmux, "-S", socket] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let command = quoted.joined(separator: " ") + " 2>/dev/null" + (capture ? "" : " >/dev/null")
            guard let pipe = popen(command, "r") else { return "" }
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&buffer, 1, buffer.count, pipe)
                if count <= 0 { break }
                data += buffer[..<count]
            }
            pclose(pipe)
            return String(decoding: data, as: UTF8.self)
        }

        func start(_ command: String) {
            run(["kill-server"])
            sessions += 1
            run(["new-session", "-d", "-x", "120", "-y", "50", "-s", "repl", command])
        }
        func send(_ keys: String...) { run(["send-keys", "-t", "repl"] + keys) }
        func type(_ text: String) { run(["send-keys", "-t", "repl", "-l", text]) }
        /// The visible screen (tmux trims trailing spaces: the prompt `> ` shows as `>`).
        var screen: String { run(["capture-pane", "-p", "-t", "repl"], capture: true) }

        /// Waits until the screen satisfies `condition` (10 s at most).
        func wait(_ what: String, _ condition: (String) -> Bool = { _ in false }, file: StaticString = #filePath, line: UInt = #line) {
            let deadline = Date().addingTimeInterval(10)
            var text = ""
            while Date() < deadline {
                text = screen
                if text.contains(what) || condition(text) { return }
                usleep(50_000)
            }
            XCTFail("timed out waiting for \(what.debugDescription); screen:\n\(text)", file: file, line: line)
        }
        func close() { run(["kill-server"]) }
    }

    func testTerminalSession() throws {
        let binary = try requireBinary()
        guard let tmux = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("tmux is not installed (Scripts/setup installs it): the terminal test needs it")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-repl-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let history = folder.appendingPathComponent("state/history").path
        let command = "env LOPPER_HISTORY=\(history) \(binary) repl; echo exited=$?; sleep 60"
        let terminal = Terminal(tmux: tmux, folder: folder.path)
        defer { terminal.close() }

        terminal.start(command)
        terminal.wait("Ctrl-D exits.\n>")
        terminal.type("x = 40 + 2"); terminal.send("Enter")
        terminal.type("x"); terminal.send("Enter")
        terminal.wait("> x\n42\n>")
        // Multi-line input continues at the >> prompt.
        terminal.type("function f()"); terminal.send("Enter")
        terminal.wait("\n>>")
        terminal.type("return 7 end"); terminal.send("Enter")
        terminal.type("f()"); terminal.send("Enter")
        terminal.wait("> f()\n7\n>")
        // Tab completes a field and a tensor name.
        terminal.type("lopper.ze"); terminal.send("Tab")
        terminal.wait("> lopper.zeros")
        terminal.type("{2}"); terminal.send("Enter")
        terminal.wait("Tensor[2] F32")
        terminal.type("ck = {names = function() return {'model.layers.0.mlp.weight', 'model.layers.1.mlp.weight'} end}")
        terminal.send("Enter")
        terminal.type("ck[\"model.layers.0"); terminal.send("Tab")
        terminal.wait("> ck[\"model.layers.0.mlp.weight\"]")
        terminal.send("C-c")
        terminal.wait("", { $0.hasSuffix("\n>") || $0.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("\n>") })
        // Ctrl-C stops a running statement and the session goes on.
        terminal.type("while true do end"); terminal.send("Enter")
        usleep(300_000)
        terminal.send("C-c")
        terminal.wait("interrupted")
        terminal.type("x + 1"); terminal.send("Enter")
        terminal.wait("> x + 1\n43\n>")
        terminal.send("C-d")
        terminal.wait("exited=0")

        // The history persists into the next session.
        let saved = try String(contentsOfFile: history, encoding: .utf8)
        XCTAssertTrue(saved.contains("function\\040f()\\012return\\0407\\040end"), saved)
        terminal.start(command)
        terminal.wait("Ctrl-D exits.\n>")
        terminal.send("Up")
        terminal.wait("> x + 1")
        terminal.send("Enter")
        terminal.wait("attempt to perform arithmetic on a nil value (global 'x')")
        terminal.send("C-d")
        terminal.wait("exited=0")
    }
}
