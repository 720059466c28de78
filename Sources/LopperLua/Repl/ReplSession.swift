import CLua
import CLuaShim
import LopperIO
#if canImport(Glibc)
import Glibc
#endif

/// The evaluation core of `lopper repl`, independent of any terminal: feed it lines
/// and it behaves like the standalone `lua` 5.4 interpreter. A line is first tried as
/// `return <line>` so expressions print without `=`; a chunk whose syntax error ends
/// in `<eof>` is incomplete and waits for more lines; results print tab-separated
/// (tensors as summaries, tables pretty-printed); errors print with a traceback and
/// the session goes on. Output goes through the closures, `print` included.
public final class ReplSession {
    public enum Outcome: Equatable, Sendable {
        /// The chunk ran (or printed its results).
        case done
        /// The chunk is incomplete: more lines are needed (prompt `>> `).
        case incomplete
        /// A syntax or runtime error was reported.
        case failed
    }

    public let lua: LuaState
    private let output: (String) -> Void
    private let errorOutput: (String) -> Void
    private var pending: [String] = []
    /// The last complete chunk (all its lines), for the history.
    public private(set) var lastChunk = ""
    /// True while an incomplete chunk waits for more lines.
    public var isContinuing: Bool { !pending.isEmpty }

    static let chunkName = "=stdin"

    /// A session over `lua` (a trusted state): installs the printer, the completer,
    /// the helpers `layers`, `hist`, `try` and `reload`, and a `print` that writes to `output`.
    public init(lua: LuaState, output: @escaping (String) -> Void, errorOutput: @escaping (String) -> Void) throws {
        self.lua = lua
        self.output = output
        self.errorOutput = errorOutput
        try ReplPrelude.install(in: lua, write: output)
        plugins = ReplPlugins(write: output)
        plugins.install(in: lua)
    }

    /// `try`, `reload` and `plugins`.
    private let plugins: ReplPlugins

    /// Evaluates one line of input (continuing a pending incomplete chunk).
    @discardableResult
    public func feed(_ line: String) -> Outcome {
        let stack = lua.stack
        let base = stack.top
        defer { stack.setTop(base) }
        if pending.isEmpty {
            let expression = line.hasPrefix("=") ? "return " + line.dropFirst() : "return " + line
            if load(expression) == LUA_OK {
                lastChunk = line
                return execute(base: base)
            }
            stack.setTop(base)
        }
        pending.append(line)
        let source = pending.joined(separator: "\n")
        let status = load(source)
        if status == LUA_OK {
            pending = []
            lastChunk = source
            return execute(base: base)
        }
        let message = stack.stringValue(-1) ?? "syntax error"
        if status == LUA_ERRSYNTAX, message.hasSuffix("<eof>") { return .incomplete }
        pending = []
        lastChunk = source
        errorOutput(message + "\n")
        return .failed
    }

    /// Drops a pending incomplete chunk (Ctrl-C at the `>> ` prompt).
    public func reset() { pending = [] }

    /// At the end of input: reports a pending incomplete chunk as the syntax error it is.
    @discardableResult
    public func finish() -> Outcome {
        guard !pending.isEmpty else { return .done }
        let stack = lua.stack
        let base = stack.top
        defer { stack.setTop(base) }
        let source = pending.joined(separator: "\n")
        pending = []
        lastChunk = source
        _ = load(source)
        errorOutput((stack.stringValue(-1) ?? "incomplete chunk") + "\n")
        return .failed
    }

    /// Runs `name = expression` with `arguments` as `...` (start-up bindings such as
    /// `base = lopper.load(...)`) and returns the printed form of the new value.
    public func bind(_ name: String, to expression: String, arguments: [LuaValue] = []) throws -> String {
        try lua.run("\(name) = \(expression)", name: "=(bind \(name))", arguments: arguments)
        let stack = lua.stack
        let base = stack.top
        defer { stack.setTop(base) }
        guard ReplPrelude.pushFunction("format", on: stack) else { return "" }
        stack.pushGlobal(name)
        try stack.call(arguments: 1, results: 1)
        return stack.stringValue(-1) ?? ""
    }

    /// Tab completion for the text left of the cursor: the byte offset where the
    /// replaced word begins and the sorted replacements (globals, fields, methods, or
    /// names of an object with a `names` method inside `x["...`).
    public func completions(for text: String) -> (start: Int, candidates: [String]) {
        let stack = lua.stack
        let base = stack.top
        defer { stack.setTop(base) }
        let none = (start: text.utf8.count, candidates: [String]())
        guard ReplPrelude.pushFunction("complete", on: stack) else { return none }
        stack.push(text)
        do { try stack.call(arguments: 1, results: 2) } catch { return none }
        var isInteger: Int32 = 0
        let start = Int(lopper_tointeger(stack.state, -2, &isInteger))
        guard isInteger != 0, stack.type(-1) == LUA_TTABLE else { return none }
        var candidates: [String] = []
        let count = lua_rawlen(stack.state, -1)
        if count > 0 {
            for index in 1...count {
                lua_rawgeti(stack.state, -1, lua_Integer(index))
                if let candidate = stack.stringValue(-1) { candidates.append(candidate) }
                stack.pop()
            }
        }
        return (min(max(0, start), text.utf8.count), candidates)
    }

    // MARK: - Loading and running

    private func load(_ source: String) -> Int32 {
        var bytes = Array(source.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                luaL_loadbufferx(lua.state, $0.baseAddress, $0.count, ReplSession.chunkName, "t")
            }
        }
    }

    /// Calls the function on top (above `base`) and prints its results.
    private func execute(base: Int32) -> Outcome {
        let stack = lua.stack
        LuaInterrupt.clear()
        defer {
            // The line's outcome is reported and the session goes on: a write it had
            // cancelled no longer claims the next signal.
            LuaInterrupt.clear()
            WriteCancellation.reported()
        }
        do {
            try stack.call(arguments: 0, results: LUA_MULTRET)
            let count = stack.top - base
            guard count > 0 else { return .done }
            guard ReplPrelude.pushFunction("format", on: stack) else { return .done }
            lopper_insert(stack.state, base + 1)
            try stack.call(arguments: count, results: 1)
            output((stack.stringValue(-1) ?? "") + "\n")
            return .done
        } catch {
            errorOutput("\(error)\n")
            return .failed
        }
    }
}
