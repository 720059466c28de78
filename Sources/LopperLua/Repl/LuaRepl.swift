import CLineEdit
import CLuaShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `lopper repl`: binds the checkpoints given on the command line, then reads
/// statements from the terminal (libedit: prompt, history, Tab completion, Ctrl-C)
/// or, when standard input is not a terminal, from standard input without prompts.
public enum LuaRepl {
    public struct Options: Sendable {
        public var base: String?
        public var finetuned: String?
        public var paths: [String]
        public init(base: String? = nil, finetuned: String? = nil, paths: [String] = []) {
            self.base = base
            self.finetuned = finetuned
            self.paths = paths
        }
    }

    /// Runs the REPL to the end of input; returns the exit status (piped input: 1 if
    /// any statement failed, 0 otherwise).
    public static func run(_ options: Options) -> Int32 {
        let interactive = isatty(STDIN_FILENO) != 0
        let colour = interactive && isatty(STDERR_FILENO) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
        let write: (String) -> Void = { text in fputs(text, stdout); if interactive { fflush(stdout) } }
        let writeError: (String) -> Void = { text in
            fflush(stdout)
            fputs(colour ? "\u{1B}[31m" + text + "\u{1B}[0m" : text, stderr)
        }
        LuaInterrupt.installHandler()
        defer { LuaInterrupt.clear() }
        let lua: LuaState
        let session: ReplSession
        do {
            lua = try LuaState()
            session = try ReplSession(lua: lua, output: write, errorOutput: writeError)
        } catch {
            fputs("lopper: error: \(error)\n", stderr)
            return 1
        }
        defer { lua.close() }
        // Bound names are announced on the terminal, or on stderr when piped so that
        // standard output carries only results.
        let announce: (String) -> Void = interactive ? write : { fputs($0, stderr) }
        if interactive {
            announce("Lopper \(lopperLuaVersion) with \(luaVersion). help() lists the API, Tab completes, Ctrl-D exits.\n")
        }
        do {
            for (name, expression, arguments) in bindings(options) {
                let shown = try session.bind(name, to: expression, arguments: arguments)
                let call = arguments.isEmpty ? expression : expression.replacingOccurrences(of: "...", with: "\"\(arguments[0].string ?? "")\"")
                announce("\(name) = \(call)\n    \(shown.replacingOccurrences(of: "\n", with: "\n    "))\n")
            }
        } catch {
            fflush(stdout)
            fputs("lopper: error: \(error)\n", stderr)
            return 1
        }
        return interactive ? runTerminal(session) : runPiped(session)
    }

    static var luaVersion: String { "Lua 5.4" }

    static func bindings(_ options: Options) -> [(String, String, [LuaValue])] {
        var list: [(String, String, [LuaValue])] = []
        if let base = options.base { list.append(("base", "lopper.load(...)", [.string(base)])) }
        // With a base, --finetuned may be a LoRA adapter folder (read as the base with it merged in).
        if let finetuned = options.finetuned { list.append(("ft", options.base == nil ? "lopper.load(...)" : "lopper.load(..., base)", [.string(finetuned)])) }
        if options.base != nil, options.finetuned != nil { list.append(("delta", "lopper.delta(base, ft)", [])) }
        for (index, path) in options.paths.enumerated() {
            list.append(("m\(index + 1)", "lopper.load(...)", [.string(path)]))
        }
        return list
    }

    /// Standard input without a terminal: the same chunk logic, no prompts, no colour.
    static func runPiped(_ session: ReplSession) -> Int32 {
        var failed = false
        while let line = readLine(strippingNewline: true) {
            if session.feed(line) == .failed { failed = true }
        }
        if session.finish() == .failed { failed = true }
        fflush(stdout)
        return failed ? 1 : 0
    }

    static func runTerminal(_ session: ReplSession) -> Int32 {
        let editor = LineEditor(historyPath: historyPath(), session: session)
        defer { editor.close() }
        while true {
            switch editor.read(prompt: session.isContinuing ? ">> " : "> ") {
            case .line(let line):
                let outcome = session.feed(line)
                if outcome != .incomplete { editor.addHistory(session.lastChunk) }
            case .interrupted:
                LuaInterrupt.clear()
                session.reset()
                fputs("\n", stdout)
                fflush(stdout)
            case .endOfInput:
                fputs("\n", stdout)
                fflush(stdout)
                return 0
            }
        }
    }

    /// `$LOPPER_HISTORY` (empty: no history file), else
    /// `$XDG_STATE_HOME/lopper/history`, else `~/.local/state/lopper/history`.
    public static func historyPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["LOPPER_HISTORY"] { return path.isEmpty ? nil : path }
        let state: String
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            state = xdg
        } else if let home = environment["HOME"], !home.isEmpty {
            state = home + "/.local/state"
        } else {
            return nil
        }
        return state + "/lopper/history"
    }
}

/// The libedit editor of CLineEdit, with the session as completer.
final class LineEditor {
    enum Input { case line(String), interrupted, endOfInput }

    private var editor: OpaquePointer?
    private let session: ReplSession

    init(historyPath: String?, session: ReplSession) {
        self.session = session
        if let historyPath {
            let folder = (historyPath as NSString).deletingLastPathComponent
            if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        editor = lopper_editor_open("lopper", historyPath, { context, text, start in
            guard let context, let text, let start else { return nil }
            let this = Unmanaged<LineEditor>.fromOpaque(context).takeUnretainedValue()
            let result = this.session.completions(for: String(cString: text))
            start.pointee = Int32(result.start)
            guard !result.candidates.isEmpty else { return nil }
            // Freed by CLineEdit with free().
            guard let memory = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (result.candidates.count + 1)) else { return nil }
            let list = memory.assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self)
            for (index, candidate) in result.candidates.enumerated() { list[index] = strdup(candidate) }
            list[result.candidates.count] = nil
            return list
        }, context, lopper_interrupt_pending)
    }

    func read(prompt: String) -> Input {
        guard let editor else {
            fputs(prompt, stdout)
            fflush(stdout)
            return readLine().map { .line($0) } ?? .endOfInput
        }
        var status: Int32 = 0
        guard let line = lopper_editor_read(editor, prompt, &status) else {
            return status == LOPPER_EDITOR_INTERRUPTED ? .interrupted : .endOfInput
        }
        defer { free(line) }
        return .line(String(cString: line))
    }

    func addHistory(_ entry: String) {
        guard let editor, !entry.allSatisfy(\.isWhitespace) else { return }
        lopper_editor_add_history(editor, entry)
    }

    func close() {
        if let editor { lopper_editor_close(editor) }
        editor = nil
    }
}
