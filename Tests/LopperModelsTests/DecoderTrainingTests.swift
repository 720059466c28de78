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
        try EncoderTrainingTests.assertMatchesPyTorch(loss: loss, model.parameters, expected, name)
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
