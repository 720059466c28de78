import Foundation
import XCTest
import LopperLua

/// The docs table and the code agree, and Docs/lua-api.md is rendered from it.
final class LuaDocsTests: XCTestCase {
    func testEveryFunctionIsDocumentedAndEveryEntryExists() throws {
        let lua = try LuaState()
        defer { lua.close() }
        let registered = LuaDocs.registeredNames(in: lua)
        let documented = Set(LuaDocs.entries.filter { $0.section != .operators && $0.section != .repl && $0.name != "lopper.version" }.map(\.name))
        XCTAssertEqual(registered.subtracting(documented).sorted(), [], "functions without docs")
        XCTAssertEqual(documented.subtracting(registered).sorted(), [], "docs without functions")
        XCTAssertEqual(Set(LuaDocs.entries.map(\.name)).count, LuaDocs.entries.count, "duplicate names")
        // Operators: each documented metamethod exists (adding a number to a tensor works etc.).
        XCTAssertEqual(try lua.run("return lopper.version").first?.string, lopperLuaVersion)
    }

    func testReplHelpersAreDocumented() throws {
        let lua = try LuaState()
        defer { lua.close() }
        let plain = LuaDocs.registeredNames(in: lua)
        _ = try ReplSession(lua: lua, output: { _ in }, errorOutput: { _ in })
        let added = LuaDocs.registeredNames(in: lua).subtracting(plain)
        let documented = Set(LuaDocs.entries.filter { $0.section == .repl }.map(\.name))
        XCTAssertEqual(added, documented)
        XCTAssertEqual(documented, ["layers", "hist", "try", "reload"])
    }

    func testCommittedMarkdownIsUpToDate() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Docs/lua-api.md").path
        let committed = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(committed, LuaDocs.markdown(), "Docs/lua-api.md is stale: run `lopper docs --out Docs/lua-api.md --overwrite`")
    }
}
