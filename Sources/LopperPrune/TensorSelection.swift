/// Which tensors of a checkpoint a method prunes.
///
/// By default: every 2-D linear weight (`*.weight` of rank 2) and the bias of each such
/// layer. Embeddings, norms and output heads (`lm_head`, `classifier`, ...) keep their
/// fine-tuned values, as in the DARE papers. `include` globs add tensors, `exclude` globs
/// remove them; exclude wins.
public struct TensorSelection: Sendable {
    public var include: [Glob]
    public var exclude: [Glob]

    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include.map(Glob.init)
        self.exclude = exclude.map(Glob.init)
    }

    /// Name fragments of tensors that are never linear layers of the transformer body.
    public static let keptFragments = [
        "embed", "wte", "wpe", "word_embeddings", "position_embeddings", "token_type_embeddings",
        "norm", "ln_", "layernorm", "lm_head", "classifier", "score.", "pooler", "rotary",
    ]

    public enum Decision: Equatable, Sendable {
        case prune
        /// Kept as fine-tuned, with the reason shown in the report.
        case keep(String)

        public var isPrune: Bool { if case .prune = self { return true } else { return false } }
    }

    /// Decides for tensor `name` of a checkpoint whose shapes `shapeOf` gives (nil: no
    /// such tensor). A bias is pruned with its layer: when `*.weight` beside it is.
    public func decide(name: String, shapeOf: (String) -> [Int]?) -> Decision {
        decide(name: name, shape: shapeOf(name) ?? []) { weight in
            guard let shape = shapeOf(weight), shape.count == 2 else { return nil }
            return decide(name: weight, shape: shape, weightDecision: { _ in nil })
        }
    }

    /// `weightDecision` gives the decision of a 2-D `*.weight` (nil when there is none).
    private func decide(name: String, shape: [Int], weightDecision: (String) -> Decision?) -> Decision {
        if let rule = exclude.first(where: { $0.matches(name) }) {
            return .keep("excluded by \(rule)")
        }
        if include.contains(where: { $0.matches(name) }) { return .prune }
        let lower = name.lowercased()
        if let fragment = Self.keptFragments.first(where: { lower.contains($0) }) {
            return .keep(Self.reason(for: fragment))
        }
        if name.hasSuffix(".weight") {
            return shape.count == 2 ? .prune : .keep("not a 2-D linear weight")
        }
        if name.hasSuffix(".bias") {
            let weight = String(name.dropLast("bias".count)) + "weight"
            switch weightDecision(weight) {
            case .prune?: return .prune
            case .keep(let reason)?: return .keep("its weight is kept (\(reason))")
            case nil: return .keep("bias of a non-linear layer")
            }
        }
        return .keep("not a linear weight or bias")
    }

    private static func reason(for fragment: String) -> String {
        switch fragment {
        case "lm_head", "classifier", "score.", "pooler": return "output head"
        case "norm", "ln_", "layernorm": return "normalisation"
        case "rotary": return "positional buffer"
        default: return "embedding"
        }
    }
}

/// `weight`, `bias` or `other`: what a tensor is to a method (`ctx.kind`).
public func tensorKind(of name: String) -> String {
    name.hasSuffix(".weight") ? "weight" : name.hasSuffix(".bias") ? "bias" : "other"
}

/// The largest layer number Lopper accepts in a tensor name (far beyond any model).
public let maximumLayerIndex = 1_000_000

/// Number of transformer blocks among `names`: the highest layer index + 1 (0 without
/// blocks). A name whose layer number is out of range (`model.layers.9223372036854775807.`)
/// is an error naming it, not an overflow.
public func layerCount(of names: [String]) throws -> Int {
    var highest = -1
    for name in names {
        guard let layer = layerIndex(of: name) else { continue }
        guard layer <= maximumLayerIndex else {
            throw PruneError("tensor \"\(name)\": layer number \(layer) is out of range (at most \(maximumLayerIndex))")
        }
        highest = max(highest, layer)
    }
    return highest + 1
}

/// The transformer block a tensor belongs to: the first all-digit (ASCII) path component
/// (`model.layers.12.mlp.up_proj.weight` -> 12), or nil outside the blocks. Numbers too
/// large for an Int read as Int.max, which `layerCount(of:)` refuses.
public func layerIndex(of name: String) -> Int? {
    for part in name.split(separator: ".") where !part.isEmpty && part.allSatisfy({ $0.isASCII && $0.isNumber }) {
        return Int(part) ?? Int.max
    }
    return nil
}
