import XCTest
final class LopperIOPlaceholderTests: XCTestCase { func testNothingYet() {} }
