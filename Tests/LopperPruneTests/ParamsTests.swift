import XCTest
import LopperPrune

final class ParamsTests: XCTestCase {
    let schema = ParamSchema(method: "dare", specs: [
        ParamSpec(name: "rate", type: .number, defaultValue: .number(0.9), min: 0, max: 1, doc: "drop rate p"),
        ParamSpec(name: "rescale", type: .string, defaultValue: .string("dare"), choices: ["dare", "q", "l1", "none"]),
        ParamSpec(name: "rows", type: .boolean, defaultValue: .boolean(false)),
        ParamSpec(name: "k", type: .integer),
    ])

    func testDefaultsGlobalsAndGlobOverrides() throws {
        let settings = [try Setting(parsing: "*.mlp.*:rate=0.5"), try Setting(parsing: "rate=0.99")]
        try schema.validate(settings)
        let attention = try schema.resolve(settings, name: "m.layers.0.attn.q.weight", layer: 0, layerCount: 2)
        XCTAssertEqual(attention["rate"], .number(0.99))
        XCTAssertEqual(attention["rescale"], .string("dare"))
        let mlp = try schema.resolve(settings, name: "m.layers.0.mlp.up.weight", layer: 0, layerCount: 2)
        XCTAssertEqual(mlp["rate"], .number(0.5), "glob settings win over global ones")
        XCTAssertNil(mlp["k"])
    }

    func testSchedulesResolvePerLayer() throws {
        let settings = [try Setting(parsing: "rate=[0.5,0.7,0.9]")]
        let first = try schema.resolve(settings, name: "a.0.w", layer: 0, layerCount: 5)
        let middle = try schema.resolve(settings, name: "a.2.w", layer: 2, layerCount: 5)
        let last = try schema.resolve(settings, name: "a.4.w", layer: 4, layerCount: 5)
        XCTAssertEqual(first["rate"], .number(0.5))
        XCTAssertEqual(middle["rate"], .number(0.7))
        XCTAssertEqual(last["rate"], .number(0.9))
    }

    func testErrorsListTheValidParameters() throws {
        func message(_ text: String) -> String {
            do { try schema.validate([try Setting(parsing: text)]); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("rat=0.9").hasPrefix("unknown parameter 'rat' for method dare; valid parameters:"))
        XCTAssertTrue(message("rat=0.9").contains("rate (number, default 0.9, 0..1): drop rate p"))
        XCTAssertTrue(message("rate=1.5").contains("1.5 is outside 0..1"))
        XCTAssertTrue(message("rate=[0.5,2]").contains("2 is outside 0..1"))
        XCTAssertTrue(message("rate=high").contains("'high' is not a number"))
        XCTAssertTrue(message("rescale=sqrt").contains("is not one of dare, q, l1, none"))
        XCTAssertTrue(message("rows=maybe").contains("is not true or false"))
        XCTAssertTrue(message("k=2.5").contains("is not an integer"))
        XCTAssertThrowsError(try Setting(parsing: "rate"))
        XCTAssertEqual(message("rate=nan").isEmpty, false)
    }
}
