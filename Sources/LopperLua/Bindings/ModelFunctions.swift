import CLua
import CLuaShim
import Foundation
import LopperCore
import LopperIO
import LopperModels

/// A model opened from Lua: the forward pass (LopperModels), the folder's tokenizer
/// when it has a `tokenizer.json`, and what overrides its weights (for `tostring`).
final class LuaModel {
    let folder: String
    let model: LanguageModel
    /// Nil: the folder has no tokenizer.json; a failure: it has one Lopper cannot read.
    let tokenizerResult: Result<Tokenizer, Error>?
    let weightsNote: String?
    /// Heap memory the model holds beyond mapped files and overriding tensors (an
    /// estimate, for Lua's collector): the folder's 2-D float weights not stored as F32,
    /// which the linear layers widen to F32 copies.
    let heapBytes: Int

    init(folder: String, model: LanguageModel, tokenizerResult: Result<Tokenizer, Error>?, weightsNote: String?, base: Checkpoint) {
        self.folder = folder
        self.model = model
        self.tokenizerResult = tokenizerResult
        self.weightsNote = weightsNote
        heapBytes = base.names.reduce(0) { total, name in
            guard let info = base.info(name), info.dtype != .f32, info.dtype.isFloatingPoint, info.shape.count == 2 else { return total }
            return total + info.shape.reduce(1, *) * 4
        }
    }

    var config: ModelConfig { model.config }

    func tokenizer(_ function: String) throws -> Tokenizer {
        switch tokenizerResult {
        case .success(let tokenizer)?: return tokenizer
        case .failure(let error)?: throw LuaError("\(function): cannot use the tokenizer of \(folder): \(error)")
        case nil: throw LuaError("\(function): no tokenizer.json in \(folder): pass token ids instead of text")
        }
    }

    var summary: String {
        let c = config
        var text = "Model(\(c.modelType) \(c.architecture == .llama ? "decoder" : "encoder"): \(c.numLayers) layers, hidden \(c.hiddenSize), vocab \(c.vocabSize)"
        text += tokenizerResult == nil ? ", no tokenizer" : ""
        if let weightsNote { text += ", " + weightsNote }
        return text + "; \(folder))"
    }
}

/// `lopper.model`, `lopper.output_change` and the Model metatable. Trusted states only
/// (`LopperModule.install` leaves the functions out of plugin sandboxes).
enum ModelFunctions {
    static let metatable = "lopper.Model"

    static let functions: [(String, LuaFunction)] = [
        ("model", { stack in
            let folder = try stack.string(1, "model")
            let model = try load(folder, stack)
            stack.pushObject(model, metatable: metatable, externalBytes: model.heapBytes)
            return 1
        }),
        ("output_change", { stack in
            let candidate = try model(stack, 1, "output_change"), reference = try model(stack, 2, "output_change")
            let a = candidate.config, b = reference.config
            guard a.architecture == b.architecture, a.vocabSize == b.vocabSize, a.hiddenSize == b.hiddenSize else {
                throw LuaError("output_change: the models do not match (\(a.modelType), hidden \(a.hiddenSize), vocab \(a.vocabSize) vs \(b.modelType), hidden \(b.hiddenSize), vocab \(b.vocabSize))")
            }
            let tokenizerOwner = reference.tokenizerResult != nil || candidate.tokenizerResult == nil ? reference : candidate
            let text = try sequences(stack, 3, "output_change", tokenizerOwner)
            guard !text.isEmpty else { throw LuaError("output_change: no text to compare on") }
            stack.push(try wrap("output_change") {
                try OutputChange.between(candidate.model, reference.model, on: CalibrationText(sequences: text))
            })
            return 1
        }),
    ]

    /// Loads `folder`, with the weights argument at index 2 (a Checkpoint, a table
    /// `{name = tensor}` or a function `name -> tensor | nil`) overriding its tensors.
    static func load(_ folder: String, _ stack: LuaStack) throws -> LuaModel {
        let tokenizerPath = (folder as NSString).appendingPathComponent("tokenizer.json")
        let tokenizer: Result<Tokenizer, Error>? = FileManager.default.fileExists(atPath: tokenizerPath)
            ? Result { try Tokenizer(path: tokenizerPath) } : nil
        let base = try wrap("model") { try Checkpoint(path: folder) }
        if stack.isNoneOrNil(2) {
            let model = try wrap("model") { try loadModel(folder: folder) }
            return LuaModel(folder: folder, model: model, tokenizerResult: tokenizer, weightsNote: nil, base: base)
        }
        let override: (String) throws -> Tensor?
        let note: String
        var table: [String: Tensor] = [:]
        if let checkpoint = CheckpointFunctions.object(stack, 2) {
            override = { checkpoint.checkpoint.contains($0) ? try checkpoint.checkpoint.tensor($0) : nil }
            note = "weights from \(checkpoint.path)"
        } else if stack.type(2) == LUA_TTABLE {
            stack.pushNil()
            while lua_next(stack.state, 2) != 0 {
                defer { stack.pop() }
                guard let name = stack.stringValue(-2) else {
                    throw LuaError("model: weights table keys must be tensor names, got a \(stack.typeName(-2)) key")
                }
                guard let tensor = TensorUserdata.tensor(at: -1, on: stack) else {
                    throw LuaError("model: weights[\"\(name)\"] is a \(stack.typeName(-1)) value, expected a tensor")
                }
                table[name] = tensor
            }
            override = { [table] in table[$0] }
            note = "\(table.count) tensor\(table.count == 1 ? "" : "s") overridden"
        } else if stack.type(2) == LUA_TFUNCTION {
            override = { name in
                stack.pushCopy(of: 2)
                stack.push(name)
                try stack.call(arguments: 1, results: 1)
                defer { stack.pop() }
                if stack.isNoneOrNil(-1) { return nil }
                guard let tensor = TensorUserdata.tensor(at: -1, on: stack) else {
                    throw LuaError("model: the weights function returned a \(stack.typeName(-1)) value for \"\(name)\", expected a tensor or nil")
                }
                return tensor
            }
            note = "weights from a function"
        } else {
            throw LuaError.badArgument(2, "model", "Checkpoint, table of tensors or function", got: stack.typeName(2))
        }
        // WeightSource turns a failing fetch into "missing tensor": keep the real error.
        var firstError: Error?
        var requested: Set<String> = []
        let model = try wrap("model") {
            do {
                return try loadModel(folder: folder) { name in
                    requested.insert(name)
                    let found: Tensor?
                    do { found = try override(name) } catch {
                        if firstError == nil { firstError = error }
                        throw error
                    }
                    return try found ?? base.tensor(name)
                }
            } catch {
                throw firstError ?? error
            }
        }
        if let firstError { throw firstError }
        // A table name the model never asked for and the folder does not have is a typo.
        if let unused = table.keys.sorted().first(where: { !requested.contains($0) && !base.contains($0) }) {
            var text = "model: weights has \"\(unused)\", which is not a tensor of \(folder)"
            if let close = LuaObjects.suggestion(for: unused, in: base.names) { text += " (did you mean \"\(close)\"?)" }
            throw LuaError(text)
        }
        return LuaModel(folder: folder, model: model, tokenizerResult: tokenizer, weightsNote: note, base: base)
    }

    /// Runs `body`, turning a Swift error into `function: message` (Lua errors pass as they are).
    static func wrap<T>(_ function: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as LuaError { throw error } catch { throw LuaError("\(function): \(error)") }
    }

    static func model(_ stack: LuaStack, _ index: Int32, _ function: String) throws -> LuaModel {
        try stack.object(index, metatable: metatable, as: LuaModel.self, function, kind: "model")
    }

    /// Token id sequences from the argument at `index`: a string (one sequence), a list
    /// of strings (tokenized with the model's tokenizer, special tokens added), a list
    /// of integers (one sequence of ids) or a list of id lists.
    static func sequences(_ stack: LuaStack, _ index: Int32, _ function: String, _ model: LuaModel) throws -> [[Int]] {
        let state = stack.state
        let expected = "string, list of strings or list of token id lists"
        if let text = stack.stringValue(index) { return [try model.tokenizer(function).encode(text)] }
        guard stack.type(index) == LUA_TTABLE else {
            // Methods count their arguments after self, as Lua's own messages do.
            let caller = function == "output_change" ? function : "Model:" + function
            throw LuaError.badArgument(index, caller, expected, got: stack.typeName(index))
        }
        let count = Int(lua_rawlen(state, index))
        lua_rawgeti(state, index, 1)
        let flat = stack.type(-1) == LUA_TNUMBER
        stack.pop()
        if flat { return [try ids(stack, index, function, sequence: nil, model)] }
        var result: [[Int]] = []
        for position in 1...max(1, count) where count > 0 {
            lua_rawgeti(state, index, lua_Integer(position))
            defer { stack.pop() }
            if let text = stack.stringValue(-1) {
                result.append(try model.tokenizer(function).encode(text))
            } else if stack.type(-1) == LUA_TTABLE {
                result.append(try ids(stack, -1, function, sequence: position, model))
            } else {
                throw LuaError("\(function): entry \(position) of the input is a \(stack.typeName(-1)) value, expected a string or a list of token ids")
            }
        }
        return result
    }

    private static func ids(_ stack: LuaStack, _ index: Int32, _ function: String, sequence: Int?, _ model: LuaModel) throws -> [Int] {
        let state = stack.state, table = lua_absindex(state, index), vocab = model.config.vocabSize
        let place = sequence.map { " of sequence \($0)" } ?? ""
        var ids: [Int] = []
        for position in stride(from: 1, through: Int(lua_rawlen(state, table)), by: 1) {
            lua_rawgeti(state, table, lua_Integer(position))
            defer { stack.pop() }
            var isInteger: Int32 = 0
            let value = Int(lopper_tointeger(state, -1, &isInteger))
            guard stack.type(-1) == LUA_TNUMBER, isInteger != 0 else {
                throw LuaError("\(function): entry \(position)\(place) is not an integer token id")
            }
            guard value >= 0, value < vocab else {
                throw LuaError("\(function): token id \(value) (entry \(position)\(place)) is outside the vocabulary 0..\(vocab - 1)")
            }
            ids.append(value)
        }
        return ids
    }

    static func registerMetatable(in stack: LuaStack) {
        LuaObjects.register(metatable, prefix: "Model", in: stack, methods: methods, metamethods: metamethods) { stack, _ in
            stack.pushNil()
            return 1
        }
    }

    static let methods: [(String, LuaFunction)] = [
        ("forward", { stack in
            let model = try model(stack, 1, "Model:forward")
            let batch = try sequences(stack, 2, "forward", model)
            let output = try wrap("forward") { try model.model.forward(batch) }
            let state = stack.state
            lua_createtable(state, Int32(batch.count), 0)
            for position in batch.indices {
                lua_createtable(state, 0, 3)
                let entry = stack.top
                stack.push(output.hidden[position])
                stack.setField("hidden", in: entry)
                if let logits = output.logits?[position] {
                    stack.push(logits)
                    stack.setField("logits", in: entry)
                }
                if let pooled = output.pooled?[position] {
                    stack.push(pooled)
                    stack.setField("pooled", in: entry)
                }
                lua_rawseti(state, -2, lua_Integer(position + 1))
            }
            return 1
        }),
        ("perplexity", { stack in
            let model = try model(stack, 1, "Model:perplexity")
            guard model.config.architecture == .llama else {
                throw LuaError("perplexity: \(model.folder) is an encoder (\(model.config.modelType)); perplexity needs a decoder (a causal language model)")
            }
            let text = try sequences(stack, 2, "perplexity", model)
            let predicted = text.reduce(0) { $0 + max(0, $1.count - 1) }
            guard predicted > 0 else { throw LuaError("perplexity: no sequence has two or more tokens") }
            stack.push(try wrap("perplexity") { try perplexity(model.model, on: CalibrationText(sequences: text)) })
            stack.push(predicted)
            return 2
        }),
        ("encode", { stack in
            let model = try model(stack, 1, "Model:encode")
            let text = try stack.string(2, "Model:encode")
            let special = stack.isNoneOrNil(3) ? true : stack.boolean(3)
            stack.push(integers: try model.tokenizer("encode").encode(text, addSpecialTokens: special))
            return 1
        }),
        ("decode", { stack in
            let model = try model(stack, 1, "Model:decode")
            guard stack.type(2) == LUA_TTABLE else { throw LuaError.badArgument(2, "Model:decode", "list of token ids", got: stack.typeName(2)) }
            let tokenizer = try model.tokenizer("decode")
            stack.push(tokenizer.decode(try ids(stack, 2, "decode", sequence: nil, model)))
            return 1
        }),
        ("config", { stack in
            let model = try model(stack, 1, "Model:config")
            pushConfig(model, on: stack)
            return 1
        }),
    ]

    static let metamethods: [(String, LuaFunction)] = [
        ("__tostring", { stack in stack.push(try model(stack, 1, "tostring").summary); return 1 }),
    ]

    static func pushConfig(_ model: LuaModel, on stack: LuaStack) {
        let c = model.config
        lua_createtable(stack.state, 0, 16)
        let table = stack.top
        func set(_ key: String, _ value: Int?) {
            guard let value else { return }
            stack.push(value)
            stack.setField(key, in: table)
        }
        stack.push(c.modelType)
        stack.setField("model_type", in: table)
        stack.push(c.architecture == .llama ? "decoder" : "encoder")
        stack.setField("kind", in: table)
        stack.push(strings: c.architectures)
        stack.setField("architectures", in: table)
        set("hidden_size", c.hiddenSize)
        set("num_layers", c.numLayers)
        set("num_heads", c.numHeads)
        set("num_key_value_heads", c.numKeyValueHeads)
        set("head_dim", c.headDim)
        set("intermediate_size", c.intermediateSize)
        set("vocab_size", c.vocabSize)
        set("max_position_embeddings", c.maxPositionEmbeddings)
        set("sliding_window", c.slidingWindow)
        set("num_labels", c.numLabels)
        stack.push(Double(c.normEps))
        stack.setField("norm_eps", in: table)
        stack.push(c.hiddenAct)
        stack.setField("hidden_act", in: table)
        stack.push(c.tieWordEmbeddings)
        stack.setField("tie_word_embeddings", in: table)
        stack.push(model.folder)
        stack.setField("folder", in: table)
        stack.push(model.tokenizerResult != nil)
        stack.setField("has_tokenizer", in: table)
    }
}
