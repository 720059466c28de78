import CLuaShim
import LopperIO

/// Ctrl-C for scripts and plugins. The SIGINT handler only sets a flag; the Lua count
/// hook and the return path of every Swift function check it and raise
/// `interrupted`, so a running script or kernel call stops at the next safe point.
public enum LuaInterrupt {
    /// Installs the SIGINT handler (a second Ctrl-C exits at once with status 130).
    public static func installHandler() {
        lopper_install_sigint()
        // A signal during a write (LopperIO's TemporaryPath) also stops the running Lua code.
        WriteCancellation.forward(to: lopper_interrupt_request)
    }
    /// Asks running Lua code to stop, as Ctrl-C does.
    public static func request() { lopper_interrupt_request() }
    public static var isPending: Bool { lopper_interrupt_pending() != 0 }
    /// Clears the flag once the interrupted script has been reported.
    public static func clear() { lopper_interrupt_clear() }
}
