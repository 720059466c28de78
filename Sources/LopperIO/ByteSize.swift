import Foundation

/// Sizes as users write them for shards: bytes, or `"2GB"`, `"500MB"`, `"1.5 GiB"`
/// (kB/MB/GB/TB are powers of 1000 as Hugging Face uses them; KiB/MiB/GiB/TiB powers of 1024).
public func parseByteSize(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let digits = trimmed.prefix { $0.isNumber || $0 == "." }
    let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
    let units: [String: Double] = ["": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
                                   "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "tib": 1_099_511_627_776]
    guard let number = Double(digits), let scale = units[unit] else { return nil }
    let bytes = (number * scale).rounded()
    guard bytes >= 1, bytes < 9.0e18 else { return nil }
    return Int(bytes)
}
