/// A shell-style pattern over tensor names: `*` matches any run of characters
/// (dots included), `?` one character, `[abc]` / `[0-9]` a class. Anything else is literal.
public struct Glob: Sendable, CustomStringConvertible {
    public let pattern: String
    private let characters: [Character]

    public init(_ pattern: String) {
        self.pattern = pattern
        characters = Array(pattern)
    }

    public var description: String { pattern }

    public func matches(_ name: String) -> Bool {
        let text = Array(name)
        // Iterative matcher with single-star backtracking: linear in practice.
        var p = 0, t = 0
        var starP = -1, starT = 0
        while t < text.count {
            if p < characters.count, characters[p] == "*" {
                starP = p; starT = t; p += 1
            } else if p < characters.count, let width = matchOne(at: p, text[t]) {
                p += width; t += 1
            } else if starP >= 0 {
                p = starP + 1; starT += 1; t = starT
            } else {
                return false
            }
        }
        while p < characters.count, characters[p] == "*" { p += 1 }
        return p == characters.count
    }

    /// Width of the pattern element at `p` if it matches `c`, nil otherwise.
    private func matchOne(at p: Int, _ c: Character) -> Int? {
        switch characters[p] {
        case "?": return 1
        case "[":
            guard let close = characters[(p + 1)...].firstIndex(of: "]"), close > p + 1 else {
                return c == "[" ? 1 : nil
            }
            var i = p + 1
            var hit = false
            while i < close {
                if i + 2 < close, characters[i + 1] == "-" {
                    if characters[i] <= c && c <= characters[i + 2] { hit = true }
                    i += 3
                } else {
                    if characters[i] == c { hit = true }
                    i += 1
                }
            }
            return hit ? close - p + 1 : nil
        default:
            return characters[p] == c ? 1 : nil
        }
    }
}
