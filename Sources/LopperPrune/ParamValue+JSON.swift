import Foundation

/// Parameters as typed JSON (reports, `__metadata__`): numbers as numbers (integral ones
/// without a fraction), strings, booleans, schedules as arrays of numbers.
extension ParamValue: Codable {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let value): try container.encode(JSONNumber(value))
        case .string(let text): try container.encode(text)
        case .boolean(let flag): try container.encode(flag)
        case .schedule(let values): try container.encode(values.map(JSONNumber.init))
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) { self = .boolean(flag) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let text = try? container.decode(String.self) { self = .string(text) }
        else { self = .schedule(try container.decode([Double].self)) }
    }

    /// Sorted-key JSON of a parameter table, the form `__metadata__` records.
    public static func json(_ values: [String: ParamValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(values)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// A number written as an integer when it is one (`1`, not `1.0`), else in Swift's
/// shortest round-tripping form.
private struct JSONNumber: Encodable {
    let value: Double
    init(_ value: Double) { self.value = value }
    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if value == value.rounded(), Swift.abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
    }
}
