import CTempPaths
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The hidden name an output is built under, `.NAME.tmp-PID` (or `.NAME.spill-PID` for
/// scratch data) beside it, registered with the signal handler of `CTempPaths`: on
/// SIGINT, SIGTERM, SIGHUP or SIGQUIT it is removed before the process exits. Creating
/// one first removes stale temporaries in the same folder whose process is gone.
public final class TemporaryPath {
    public let path: String
    private var slot: Int32

    public init(beside output: String, kind: String = "tmp") {
        let url = URL(fileURLWithPath: output)
        let folder = url.deletingLastPathComponent().path
        path = folder + "/." + url.lastPathComponent + ".\(kind)-\(getpid())"
        Self.removeStale(in: folder)
        slot = lopper_temp_register(path)
    }

    /// Runs `body` (the rename into place) with the signal handler holding off this path.
    public func commit<T>(_ body: () throws -> T) rethrows -> T {
        lopper_temp_commit_begin(slot)
        defer { lopper_temp_commit_end(slot) }
        return try body()
    }

    /// Forgets the path (renamed into place, or removed).
    public func release() {
        lopper_temp_unregister(slot)
        slot = -1
    }

    deinit { release() }

    /// Removes `.NAME.tmp-PID` and `.NAME.spill-PID` entries of `folder` whose process no
    /// longer exists (another host's process on a shared file system looks gone too).
    public static func removeStale(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(".") {
            guard let pid = stalePID(name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
    }

    static func stalePID(_ name: String) -> pid_t? {
        for marker in [".tmp-", ".spill-"] {
            guard let range = name.range(of: marker, options: .backwards) else { continue }
            let digits = name[range.upperBound...]
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { continue }
            return pid_t(digits)
        }
        return nil
    }
}

/// A signal asked the running write to stop (see `CTempPaths.h`).
public enum WriteCancellation {
    /// Throws when a signal arrived during the write of `output`.
    public static func check(_ output: String) throws {
        let signal = lopper_temp_cancel_signal()
        guard signal != 0 else { return }
        throw SafetensorsError(output, "interrupted by \(name(of: signal)); the partial output was removed")
    }

    /// The cancellation was reported and the process goes on: later signals act as outside
    /// a write again (until then a signal exits with status 1, the cancelled write's way).
    public static func reported() { lopper_temp_cancel_reported() }

    /// Also call `hook` on the first signal during a write (it must be async-signal-safe).
    public static func forward(to hook: @convention(c) () -> Void) { lopper_temp_set_forward(hook) }

    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        case SIGQUIT: return "SIGQUIT"
        default: return "signal \(signal)"
        }
    }
}

/// Puts the finished `temporary` in place of `target`. An existing folder is swapped out
/// atomically (Linux `RENAME_EXCHANGE`) and then removed, so readers see the old output
/// or the new one, never neither.
public func moveIntoPlace(_ temporary: TemporaryPath, over target: String) throws {
    let fileManager = FileManager.default
    var info = stat()
    // A file is replaced atomically by rename(2) itself; a folder needs the exchange.
    let exists = lstat(target, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    let failure: String? = temporary.commit {
        if exists, lopper_rename_exchange(temporary.path, target) == 0 { return nil }
        if exists, errno != ENOSYS, errno != EINVAL { return String(cString: strerror(errno)) }
        if exists { try? fileManager.removeItem(atPath: target) }
        return rename(temporary.path, target) == 0 ? nil : String(cString: strerror(errno))
    }
    if let failure { throw SafetensorsError(target, "cannot move the output into place: \(failure)") }
    if exists { try? fileManager.removeItem(atPath: temporary.path) }
    temporary.release()
}
