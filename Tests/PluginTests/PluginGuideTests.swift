import Foundation
import XCTest
import LopperLua

/// Every plugin in Docs/plugins.md loads and passes `plugin check`: the guide stays true.
final class PluginGuideTests: XCTestCase {
    func testEveryExampleInTheGuidePassesTheCheck() throws {
        let guide = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Docs/plugins.md")
        let text = try String(contentsOf: guide, encoding: .utf8)
        let blocks = text.components(separatedBy: "```lua\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
        let plugins = blocks.filter { $0.hasPrefix("return {") }
        XCTAssertGreaterThanOrEqual(plugins.count, 4)
        for source in plugins {
            let plugin = try Plugin(source: source, chunkName: "=guide", path: "Docs/plugins.md")
            XCTAssertFalse(try PluginCheck.run(plugin).isEmpty, plugin.name)
        }
    }
}
