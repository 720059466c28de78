import CZlib
import Foundation

/// zlib streams (RFC 1950), for plugin sources recorded in an output's `__metadata__`:
/// `python -c 'import zlib, base64; print(zlib.decompress(base64.b64decode(s)))'` reads them.
public enum Deflate {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func compress(_ data: Data) throws -> Data {
        var size = compressBound(uLong(data.count))
        var out = Data(count: Int(size))
        let status = out.withUnsafeMutableBytes { target in
            data.withUnsafeBytes { source in
                compress2(target.bindMemory(to: Bytef.self).baseAddress, &size,
                          source.bindMemory(to: Bytef.self).baseAddress, uLong(data.count), 9)
            }
        }
        guard status == Z_OK else { throw Failure(description: "zlib compress failed (status \(status))") }
        return out.prefix(Int(size))
    }

    /// Inflates `data`, which must hold exactly `expectedSize` bytes once inflated.
    public static func decompress(_ data: Data, expectedSize: Int) throws -> Data {
        guard expectedSize >= 0, expectedSize <= 64 << 20 else { throw Failure(description: "implausible inflated size \(expectedSize)") }
        var size = uLong(expectedSize)
        var out = Data(count: max(1, expectedSize))
        let status = out.withUnsafeMutableBytes { target in
            data.withUnsafeBytes { source in
                uncompress(target.bindMemory(to: Bytef.self).baseAddress, &size,
                           source.bindMemory(to: Bytef.self).baseAddress, uLong(data.count))
            }
        }
        guard status == Z_OK, Int(size) == expectedSize else {
            throw Failure(description: "not a zlib stream of \(expectedSize) bytes (status \(status))")
        }
        return out.prefix(expectedSize)
    }
}
