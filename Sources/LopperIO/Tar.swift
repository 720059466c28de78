import Foundation

/// Canonical ustar archives of a few small regular files: what `lopper plugin pack`
/// writes. Every header field but the name and size is fixed (mode 0644, owner 0,
/// time 0), files are in name order, so the same files always give the same bytes
/// (and SHA-256), and any tar tool can list or unpack one. `read` accepts only that
/// canonical form: it re-writes what it parsed and refuses the archive unless the
/// bytes are identical, so a changed byte anywhere (header, padding, trailer) is
/// refused, not silently ignored.
public enum Tar {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let maxFiles = 256, maxBytes = 16 << 20

    /// `files` (relative path -> bytes) as one archive.
    public static func write(_ files: [String: Data]) throws -> Data {
        var archive = Data()
        for (name, content) in files.sorted(by: { $0.key < $1.key }) {
            try checkName(name)
            archive += header(name: name, size: content.count)
            archive += content
            archive += Data(count: (512 - content.count % 512) % 512)
        }
        archive += Data(count: 1024)
        return archive
    }

    public static func read(_ archive: Data, file: String) throws -> [String: Data] {
        func fail(_ why: String) -> Failure { Failure(description: "\(file): not a Lopper plugin package (\(why))") }
        guard archive.count <= maxBytes + 512 * (maxFiles + 2) else { throw fail("larger than \(maxBytes >> 20) MiB") }
        let bytes = [UInt8](archive)
        var files: [String: Data] = [:], offset = 0
        while offset + 512 <= bytes.count {
            let block = bytes[offset..<offset + 512]
            if block.allSatisfy({ $0 == 0 }) { break }
            guard files.count < maxFiles else { throw fail("more than \(maxFiles) files") }
            let name = String(decoding: block.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
            let sizeField = String(decoding: bytes[offset + 124..<offset + 135], as: UTF8.self)
            guard let size = Int(sizeField, radix: 8), size >= 0, offset + 512 + size <= bytes.count else {
                throw fail("bad size in the header of entry \(files.count + 1)")
            }
            try checkName(name, file: file)
            guard files[name] == nil else { throw fail("\(name) appears twice") }
            files[name] = Data(bytes[offset + 512..<offset + 512 + size])
            offset += 512 + (size + 511) / 512 * 512
        }
        guard (try? write(files)) == archive else {
            throw fail("not in the canonical form plugin pack writes: it was changed after packing, or made by another tool")
        }
        return files
    }

    /// Relative paths of plain names only: no `..`, no leading `/`, at most 99 bytes.
    public static func checkName(_ name: String, file: String = "package") throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        let plain = parts.allSatisfy { part in
            !part.isEmpty && part != "." && part != ".." && part.allSatisfy { ($0.isLetter || $0.isNumber) && $0.isASCII || "._-+".contains($0) }
        }
        guard plain, name.utf8.count < 100, parts.count <= 4 else {
            throw Failure(description: "\(file): '\(name.prefix(120))' is not a plain relative file name (letters, digits, . _ - +, at most 4 levels, 99 bytes)")
        }
    }

    private static func header(name: String, size: Int) -> Data {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte } }
        put(name, at: 0)
        put("0000644", at: 100)   // mode
        put("0000000", at: 108)   // uid
        put("0000000", at: 116)   // gid
        put(String(format: "%011o", size), at: 124)
        put("00000000000", at: 136)   // mtime
        put("        ", at: 148)   // checksum, counted as spaces
        block[156] = UInt8(ascii: "0")
        put("ustar", at: 257)
        put("00", at: 263)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), at: 148)
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        return Data(block)
    }
}
