import CLua
import CLuaShim
import Foundation
import LopperCore
import LopperIO
import LopperModels
import LopperCalibration
import LopperPrune

/// `lopper.search_q{...}`: DAREx-q's global q search from Lua, by the output change on
/// text or by any metric a script computes from the candidate model (for example a
/// labeled validation score, with `maximize = true`). Trusted states only.
enum SearchFunctions {
    static let functions: [(String, LuaFunction)] = [("search_q", searchQ)]

    static let searchQ: LuaFunction = { stack in
        let function = "search_q"
        guard stack.type(1) == LUA_TTABLE else { throw LuaError.badArgument(1, function, "options table", got: stack.typeName(1)) }
        func field(_ key: String) throws -> LuaValue? { try stack.optionalField(1, key, function) }
        guard let base = try field("base")?.string, let finetuned = try field("finetuned")?.string else {
            throw LuaError("search_q: options base and finetuned (model folders) are required")
        }
        guard let rate = try field("rate")?.number else { throw LuaError("search_q: option rate (the drop rate p) is required") }
        let seeds = try integers(stack, "seeds") ?? [0, 1, 2]
        let maximize = try field("maximize")?.boolean ?? false
        let length = try sequenceLength(try field("seq_len"))

        // The metric: a Lua function of the candidate model, or the output change on text.
        stack.field("metric", of: 1)
        let metricIndex = stack.top
        let hasMetric = stack.type(metricIndex) == LUA_TFUNCTION
        guard hasMetric || stack.isNoneOrNil(metricIndex) else { throw LuaError("search_q: metric must be a function(model) -> number") }
        var text = CalibrationText(sequences: [])
        let hasText = try field("texts") != nil || field("data") != nil
        if !hasMetric || hasText {
            let tokenizer = try ModelFunctions.wrap(function) { try Tokenizer(path: finetuned) }
            if let path = try field("data")?.string {
                text = try ModelFunctions.wrap(function) { try CalibrationText(path: path, tokenizer: tokenizer, sequenceLength: length) }
            } else {
                stack.field("texts", of: 1)
                defer { stack.pop() }
                guard stack.type(-1) == LUA_TTABLE else { throw LuaError("search_q: give texts = {...}, data = FILE or a metric function") }
                var sequences: [[Int]] = []
                for position in 1...max(1, Int(lua_rawlen(stack.state, -1))) {
                    lua_rawgeti(stack.state, -1, lua_Integer(position))
                    defer { stack.pop() }
                    if let line = stack.stringValue(-1), !line.isEmpty { sequences.append(tokenizer.encode(line, maxLength: length)) }
                }
                text = CalibrationText(sequences: sequences.filter { !$0.isEmpty })
                guard !text.sequences.isEmpty else {
                    throw LuaError("search_q: texts holds no text to measure the output change on (give non-empty strings)")
                }
            }
        }
        let tokenizerResult: Result<Tokenizer, Error>? = Result { try Tokenizer(path: finetuned) }
        let checkpoint = try ModelFunctions.wrap(function) { try Checkpoint(path: finetuned) }
        let score: ((LanguageModel) throws -> Double)? = hasMetric ? { model in
            stack.pushCopy(of: metricIndex)
            let wrapped = LuaModel(folder: finetuned, model: model, tokenizerResult: tokenizerResult,
                                   weightsNote: "pruned candidate", base: checkpoint)
            stack.pushObject(wrapped, metatable: ModelFunctions.metatable)
            try stack.call(arguments: 1, results: 1)
            defer { stack.pop() }
            guard stack.type(-1) == LUA_TNUMBER else {
                throw LuaError("search_q: metric returned a \(stack.typeName(-1)) value, expected a number")
            }
            let value = try stack.number(-1, function)
            guard value.isFinite else { throw LuaError("search_q: metric returned \(value.isNaN ? "NaN" : "\(value)"), expected a finite number") }
            return value
        } : nil
        let objective: SearchObjective = score.map { .custom(name: "metric", higherIsBetter: maximize, score: $0) } ?? .outputChange(text)
        let dropOutlier = try field("drop_outlier")?.boolean ?? false
        let (qMin, qMax) = (try field("q_min")?.number, try field("q_max")?.number)
        let steps = try field("steps")?.number.map { Int($0) }
        let search = try ModelFunctions.wrap(function) {
            try QSearch(basePath: base, finetunedPath: finetuned, rate: rate, seeds: seeds, objective: objective, dropOutlierSeed: dropOutlier)
        }
        let result = try ModelFunctions.wrap(function) {
            try search.run(grid: try QGridSearch.Grid.q(rate: rate, lower: qMin, upper: qMax, steps: steps))
        }
        lua_createtable(stack.state, 0, 4)
        let table = stack.top
        stack.push(result.best.q); stack.setField("q", in: table)
        stack.push(result.best.value); stack.setField("value", in: table)
        if let dare = result.dare { pushPoint(dare, on: stack); stack.setField("dare", in: table) }
        lua_createtable(stack.state, Int32(result.curve.count), 0)
        for (index, point) in result.curve.enumerated() {
            pushPoint(point, on: stack)
            lua_rawseti(stack.state, -2, lua_Integer(index + 1))
        }
        stack.setField("curve", in: table)
        return 1
    }

    private static func pushPoint(_ point: QSearch.Point, on stack: LuaStack) {
        lua_createtable(stack.state, 0, 2)
        let table = stack.top
        stack.push(point.q); stack.setField("q", in: table)
        stack.push(point.value); stack.setField("value", in: table)
    }

    /// Option seq_len: a positive integer (128 when absent).
    private static func sequenceLength(_ value: LuaValue?) throws -> Int {
        guard let value else { return 128 }
        guard let number = value.number, number >= 1, number <= Double(Int32.max), number.rounded() == number else {
            throw LuaError("search_q: seq_len must be a positive integer, got \(value.number.map { "\($0)" } ?? "a non-number")")
        }
        return Int(number)
    }

    /// A list of integers at field `key` of the options table.
    private static func integers(_ stack: LuaStack, _ key: String) throws -> [UInt64]? {
        stack.field(key, of: 1)
        defer { stack.pop() }
        if stack.isNoneOrNil(-1) { return nil }
        guard stack.type(-1) == LUA_TTABLE else { throw LuaError("search_q: \(key) must be a list of integers") }
        var values: [UInt64] = []
        for position in 1...max(1, Int(lua_rawlen(stack.state, -1))) {
            lua_rawgeti(stack.state, -1, lua_Integer(position))
            defer { stack.pop() }
            if stack.type(-1) == LUA_TNUMBER { values.append(UInt64(bitPattern: Int64(try stack.integer(-1, "search_q")))) }
        }
        return values
    }
}
