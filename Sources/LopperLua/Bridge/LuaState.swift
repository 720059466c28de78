import CLua
#if canImport(Glibc)
import Glibc
#endif
import CLuaShim
import Foundation
import LopperCore

/// A Swift function callable from Lua: reads its arguments from the stack, pushes its
/// results and returns how many. Throwing raises a Lua error at the caller's line,
/// after this function has returned.
public typealias LuaFunction = (LuaStack) throws -> Int32

final class LuaFunctionBox {
    let name: String
    let body: LuaFunction
    init(name: String, body: @escaping LuaFunction) {
        self.name = name
        self.body = body
    }
}

/// A value crossing between Swift and Lua.
public enum LuaValue {
    case `nil`
    case boolean(Bool)
    case number(Double)
    case string(String)
    case tensor(Tensor)
    /// Anything else, by Lua type name (`table`, `function`, ...).
    case other(String)

    public var number: Double? { if case .number(let value) = self { return value }; return nil }
    public var string: String? { if case .string(let value) = self { return value }; return nil }
    public var tensor: Tensor? { if case .tensor(let value) = self { return value }; return nil }
    public var boolean: Bool? { if case .boolean(let value) = self { return value }; return nil }
}

/// The single C-callable entry of every Swift function (see CLuaShim.h): runs the
/// closure and turns a thrown error into a pending message for the trampoline.
private let swiftEntry: lopper_swift_entry = { state, box in
    guard let state, let box else { return LOPPER_SWIFT_ERROR }
    let function = Unmanaged<LuaFunctionBox>.fromOpaque(box).takeUnretainedValue()
    let message: String
    let locate: Bool
    do {
        return try function.body(LuaStack(state))
    } catch let error as LuaError {
        message = error.message
        locate = !error.hasLocation
    } catch {
        message = "\(error)"
        locate = true
    }
    var text = message
    text.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { lopper_set_error(state, $0.baseAddress, $0.count, locate ? 1 : 0) }
    }
    return LOPPER_SWIFT_ERROR
}

private let swiftRelease: lopper_release_fn = { object in
    if let object { Unmanaged<AnyObject>.fromOpaque(object).release() }
}

/// A Lua 5.4 state with the `lopper` module: trusted (standard libraries, file I/O)
/// for `lopper run`, or a sandbox for plugins (see Sandbox.swift).
public final class LuaState {
    /// Limits of a sandboxed state. The defaults can be set from the environment:
    /// LOPPER_PLUGIN_SECONDS, LOPPER_PLUGIN_MEMORY_MB, LOPPER_PLUGIN_INSTRUCTIONS.
    public struct Limits: Sendable {
        /// Lua VM instructions per call from Swift (0: no limit).
        public var instructions: Int
        /// Bytes of Lua heap (tables, strings, closures).
        public var memory: Int
        /// Bytes of tensor data that Lua values may hold at once.
        public var tensorMemory: Int
        /// Wall-clock seconds per call from Swift (0: no limit); Swift functions
        /// (kernels) and the pattern functions charge against it too.
        public var seconds: Double

        public init(instructions: Int = Limits.setting("LOPPER_PLUGIN_INSTRUCTIONS") ?? 500_000_000,
                    memory: Int = (Limits.setting("LOPPER_PLUGIN_MEMORY_MB") ?? 256) << 20,
                    tensorMemory: Int = LuaState.Limits.halfOfPhysicalMemory,
                    seconds: Double = Limits.setting("LOPPER_PLUGIN_SECONDS") ?? 60) {
            self.instructions = instructions
            self.memory = memory
            self.tensorMemory = tensorMemory
            self.seconds = seconds
        }

        public static var halfOfPhysicalMemory: Int {
            let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
            return pages > 0 && pageSize > 0 ? pages * pageSize / 2 : 8 << 30
        }

        /// A non-negative number from the environment variable `name`, or nil.
        public static func setting<Number: LosslessStringConvertible & Comparable & Numeric>(_ name: String) -> Number? {
            guard let text = ProcessInfo.processInfo.environment[name], let value = Number(text), value >= 0 else { return nil }
            return value
        }
    }

    public let state: OpaquePointer
    public let isSandboxed: Bool
    public let limits: Limits?
    private var isClosed = false

    private static let hooksInstalled: Void = lopper_set_swift_hooks(swiftEntry, swiftRelease)

    /// A trusted state: all standard libraries and the full `lopper` module.
    public convenience init() throws {
        try self.init(limits: nil)
    }

    /// A plugin sandbox: no io, os, package or debug, text-only `load`, and limits.
    public convenience init(sandbox limits: Limits) throws {
        try self.init(limits: limits)
    }

    private init(limits: Limits?) throws {
        _ = LuaState.hooksInstalled
        guard let state = lopper_newstate(limits.map { max(1 << 20, $0.memory) } ?? 0,
                                          limits.map { max(1, $0.tensorMemory) } ?? 0) else {
            throw LuaError("cannot create a Lua state: out of memory")
        }
        self.state = state
        self.limits = limits
        isSandboxed = limits != nil
        if let limits {
            lopper_open_safe_libs(state)
            lopper_set_hook(state, Int64(limits.instructions), 1000, 1)
            lopper_set_time_limit(state, limits.seconds)
        } else {
            luaL_openlibs(state)
            lopper_set_hook(state, 0, 10_000, 0)  // interrupts only
        }
        lopper_install_bounded_patterns(state)
        try installGuards()
        TensorUserdata.register(in: stack)
        LazyUserdata.register(in: stack)
        LopperModule.install(in: self)
        if isSandboxed { try Sandbox.restrict(self) }
    }

    deinit { close() }

    /// Interrupts and the limits must stop the script: wrap the functions that catch
    /// errors so they re-raise those. xpcall's message handler is skipped for them:
    /// for an error raised by the count hook it would run with hooks off, unbounded.
    private func installGuards() throws {
        lopper_pushcfunction(state, lopper_doom_check)
        setGlobal("__lopper_doom_check")
        lopper_pushcfunction(state, lopper_is_doomed)
        setGlobal("__lopper_is_doomed")
        try run(EmbeddedLua.guards, name: "=lopper.guards")
    }

    /// Closes the state: every object Lua still references is released.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        lopper_close(state)
    }

    public var stack: LuaStack { LuaStack(state) }

    /// Bytes of Lua heap in use, and bytes of tensor data referenced from Lua.
    public var memoryInUse: Int { lopper_lua_bytes(state) }
    public var tensorBytesInUse: Int { lopper_external_bytes(state) }

    /// A full garbage collection cycle (runs `__gc` of unreachable tensors) as a
    /// protected call with the limits in force. It cannot fail in a sandbox, where
    /// only the host's C finalizers exist; elsewhere a finalizer's error is dropped.
    public func collectGarbage() { stack.collectGarbage() }

    // MARK: - Running code

    /// Runs `code` as a chunk named `name` with `arguments` as `...`; returns its results.
    @discardableResult
    public func run(_ code: String, name: String = "=(string)", arguments: [LuaValue] = []) throws -> [LuaValue] {
        let base = stack.top
        try load(code, name: name)
        return try callLoaded(base: base, arguments: arguments)
    }

    /// Compiles `code` as a chunk named `name` and pushes it (text only in a sandbox).
    public func load(_ code: String, name: String) throws {
        let base = stack.top
        var bytes = Array(code.utf8)
        let status = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                luaL_loadbufferx(state, $0.baseAddress, $0.count, name, isSandboxed ? "t" : "bt")
            }
        }
        try finishLoad(status: status, base: base)
    }

    /// Runs the script at `path` like the `lua` interpreter does: global `arg` holds
    /// the script at 0 and the arguments from 1, and the chunk receives them as `...`.
    public func run(file path: String, arguments: [String] = []) throws {
        let base = stack.top
        stack.push(strings: arguments)
        stack.push(path)
        lua_rawseti(state, -2, 0)
        stack.push("lopper")
        lua_rawseti(state, -2, -1)
        setGlobal("arg")
        let status = luaL_loadfilex(state, path, isSandboxed ? "t" : "bt")
        try finishLoad(status: status, base: base)
        _ = try callLoaded(base: base, arguments: arguments.map { .string($0) })
    }

    private func finishLoad(status: Int32, base: Int32) throws {
        guard status == LUA_OK else {
            let message = stack.stringValue(-1) ?? "cannot load chunk"
            stack.setTop(base)
            throw LuaError(message, hasLocation: true)
        }
    }

    private func callLoaded(base: Int32, arguments: [LuaValue]) throws -> [LuaValue] {
        for argument in arguments { push(argument) }
        lopper_reset_instructions(state)
        do {
            try stack.call(arguments: Int32(arguments.count), results: LUA_MULTRET)
        } catch {
            stack.setTop(base)
            throw error
        }
        var results: [LuaValue] = []
        if stack.top > base {
            for index in (base + 1)...stack.top { results.append(value(at: index)) }
        }
        stack.setTop(base)
        return results
    }

    // MARK: - Globals and values

    /// Sets a global (raw: no metamethod of the global table runs). Tensors become
    /// userdata that share the Swift tensor.
    public func setGlobal(_ name: String, _ value: LuaValue) {
        push(value)
        setGlobal(name)
    }

    /// Pops the value on top into the global `name` (raw).
    private func setGlobal(_ name: String) {
        lopper_pushglobaltable(state)
        stack.push(name)
        lua_rotate(state, -3, -1)
        lua_rawset(state, -3)
        stack.pop()
    }

    /// Reads a global without invoking metamethods.
    public func global(_ name: String) -> LuaValue {
        stack.pushGlobal(name)
        defer { stack.pop() }
        return value(at: -1)
    }

    /// Sets a global Swift function.
    public func register(_ name: String, _ body: @escaping LuaFunction) {
        stack.push(function: name, body)
        setGlobal(name)
    }

    public func push(_ value: LuaValue) {
        switch value {
        case .nil, .other: stack.pushNil()
        case .boolean(let flag): stack.push(flag)
        case .number(let number): stack.push(number)
        case .string(let text): stack.push(text)
        case .tensor(let tensor): TensorUserdata.push(tensor, on: stack)
        }
    }

    public func value(at index: Int32) -> LuaValue {
        switch stack.type(index) {
        case LUA_TNIL, LUA_TNONE: return .nil
        case LUA_TBOOLEAN: return .boolean(stack.boolean(index))
        case LUA_TNUMBER:
            var isNumber: Int32 = 0
            return .number(lopper_tonumber(state, index, &isNumber))
        case LUA_TSTRING: return .string(stack.stringValue(index) ?? "")
        default:
            if let tensor = TensorUserdata.tensor(at: index, on: stack) { return .tensor(tensor) }
            if let lazy = LazyUserdata.lazy(at: index, on: stack), let tensor = try? lazy.evaluate() { return .tensor(tensor) }
            return .other(stack.typeName(index))
        }
    }
}
