import Foundation
import LopperCore
import LopperIO
@testable import LopperModels
import XCTest

/// Whole-model next-token gradients of the trainable decoder against PyTorch on the committed
/// decoder fixtures (Scripts/make_gradient_fixtures.py): Llama (GQA), Qwen2 (tied embeddings,
/// q/k/v biases), Mistral (sliding window shorter than the sequences).
final class DecoderTrainingTests: XCTestCase {
    func checkAgainstPyTorch(_ name: String) throws {
        let model = try TrainableDecoder(folder: ModelTests.folder(name))
        let (inputs, _, expected) = try EncoderTrainingTests.reference(name)
        XCTAssertEqual(inputs.map(\.count), [6, 2, 11])
        let loss = try model.lossAndGradients(inputs.map { TrainingExample(ids: $0) }, dropout: nil)
        XCTAssertEqual(loss, Double(try expected.tensor("loss").floats()[0]), accuracy: 1e-5, name)
        var compared = 0
        for p in model.parameters.all {
            let reference = try expected.tensor("grad." + p.name)
            XCTAssertEqual(p.shape, reference.shape, p.name)
            let a = p.grad.floats(), e = reference.floats()
            let scale = e.map { abs($0) }.max() ?? 0
            let error = zip(a, e).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(error, max(scale, 1e-3) * 1e-4, "\(name) \(p.name): max error \(error), max |expected| \(scale)")
            compared += 1
        }
        XCTAssertEqual(compared + 1, expected.names.count, "\(name): every PyTorch gradient compared")
    }

    func testLlamaGradientsMatchPyTorch() throws { try checkAgainstPyTorch("llama") }
    func testQwen2TiedGradientsMatchPyTorch() throws { try checkAgainstPyTorch("qwen2") }
    func testMistralWindowGradientsMatchPyTorch() throws { try checkAgainstPyTorch("mistral_window") }

    func testLogitsMatchTheInferenceRuntime() throws {
        for name in ["llama", "qwen2", "mistral_window"] {
            let trainable = try TrainableDecoder(folder: ModelTests.folder(name))
            let runtime = try loadModel(folder: ModelTests.folder(name))
            let inputs = try EncoderTrainingTests.reference(name).inputs
            for (a, e) in zip(try trainable.logits(inputs), try runtime.forward(inputs).logits!) {
                for (x, y) in zip(a.floats(), e.floats()) { XCTAssertEqual(x, y, accuracy: 1e-4, name) }
            }
        }
    }
}
