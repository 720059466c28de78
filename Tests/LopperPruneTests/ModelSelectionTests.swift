import XCTest
import LopperCore
import LopperPrune

/// `granularity = model`: one top-k over several tensors, hand-computed, with ties at the
/// threshold handed to the earlier tensor whatever order the masks are asked for in.
final class ModelSelectionTests: XCTestCase {
    // |scores| 1 2 2 0 | 2 0.5 3: keep 3 of 7 (rate 4/7) = 3, then the two 2s of "a"
    // (earlier tensor); "b"'s 2 is the tie left out.
    let scores = ["a": Tensor([1, 2, 2, 0], shape: [2, 2]), "b": Tensor([2, 0.5, 3])]

    func selection(calls: inout [String]) throws -> ModelSelection {
        var seen: [String] = []
        let made = try ModelSelection(names: ["a", "b"], rate: 4.0 / 7) { name in
            seen.append(name)
            return self.scores[name]!
        }
        calls = seen
        return made
    }

    func testOneThresholdForTheModelAndTiesInTheRunsOrder() throws {
        var calls: [String] = []
        let inOrder = try selection(calls: &calls)
        XCTAssertEqual(calls, ["a", "b", "a", "b"], "two streaming passes in the run's order")
        XCTAssertEqual(inOrder.threshold.value, 2)
        XCTAssertEqual(try inOrder.mask(scores["a"]!, name: "a").floats(), [0, 1, 1, 0])
        XCTAssertEqual(try inOrder.mask(scores["b"]!, name: "b").floats(), [0, 0, 1])
        // Asked for "b" first: "a"'s ties are counted first, and the masks are the same.
        let reversed = try selection(calls: &calls)
        XCTAssertEqual(try reversed.mask(scores["b"]!, name: "b").floats(), [0, 0, 1])
        XCTAssertEqual(try reversed.mask(scores["a"]!, name: "a").floats(), [0, 1, 1, 0])
        XCTAssertThrowsError(try reversed.mask(scores["a"]!, name: "c"))
    }

    func testRateZeroAndOneKeepEverythingAndNothing() throws {
        for (rate, expected) in [(0.0, [Float](repeating: 1, count: 3)), (1.0, [0, 0, 0])] {
            let selection = try ModelSelection(names: ["a", "b"], rate: rate) { self.scores[$0]! }
            XCTAssertEqual(try selection.mask(scores["b"]!, name: "b").floats(), expected)
        }
    }
}
