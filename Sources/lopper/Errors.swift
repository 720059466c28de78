#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LopperIO

/// Runs `body`; any error becomes one line `lopper: error: ...` on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        fputs("lopper: error: \(terminalSafe(plainMessage(error)))\n", stderr)
        throw ExitCode(1)
    }
}
