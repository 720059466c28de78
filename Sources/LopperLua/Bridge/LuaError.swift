/// An error raised by Lua code (or by a Swift function called from Lua), with the
/// message as Lua formats it (`script.lua:12: message`) and the stack traceback.
public struct LuaError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var traceback: String
    /// True when `message` already starts with a `chunk:line:` location, so a Swift
    /// function rethrowing it must not prefix the caller's location again.
    public var hasLocation: Bool

    public init(_ message: String, traceback: String = "", hasLocation: Bool = false) {
        self.message = message
        self.traceback = traceback
        self.hasLocation = hasLocation
    }

    /// Splits what the traceback message handler produced (`message\nstack traceback:...`).
    init(handlerOutput text: String) {
        if let range = text.range(of: "\nstack traceback:") {
            self.init(String(text[..<range.lowerBound]),
                      traceback: String(text[text.index(after: range.lowerBound)...]), hasLocation: true)
        } else {
            self.init(text, hasLocation: true)
        }
    }

    public var description: String { traceback.isEmpty ? message : message + "\n" + traceback }

    /// `bad argument #2 to 'norm' (number expected, got string)`. For methods
    /// (`Tensor:norm`) the receiver is not counted, as Lua's own messages do.
    public static func badArgument(_ index: Int32, _ function: String, _ expected: String, got: String) -> LuaError {
        let shown = function.split(separator: ":").last.map(String.init) ?? function
        if function.contains(":") {
            if index == 1 { return LuaError("calling '\(shown)' on bad self (\(expected) expected, got \(got))") }
            return LuaError("bad argument #\(index - 1) to '\(shown)' (\(expected) expected, got \(got))")
        }
        return LuaError("bad argument #\(index) to '\(shown)' (\(expected) expected, got \(got))")
    }
}
