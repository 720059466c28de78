/// `text` safe to print on a terminal: control characters (C0, DEL, C1) and the bidi
/// controls that reorder a line are shown as escapes (`\n`, `\u{1B}`), so a tensor
/// name, file name or plugin string cannot move the cursor, forge table lines or hide
/// text. Every table and message line Lopper prints goes through here.
public func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: needsEscape) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); continue }
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
    return out
}

private func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00..<0x20, 0x7F..<0xA0, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F: return true
    default: return false
    }
}
