import XCTest
final class LopperLuaPlaceholderTests: XCTestCase { func testNothingYet() {} }
