import Foundation
import LopperCore
import LopperIO
@testable import LopperModels
import XCTest

/// Whole-model gradients of the trainable encoder: against PyTorch on the committed
/// classifier fixtures (Scripts/make_gradient_fixtures.py), and with dropout on against
/// finite differences.
final class EncoderTrainingTests: XCTestCase {
    static func reference(_ name: String) throws -> (inputs: [[Int]], labels: [Int], file: SafetensorsFile) {
        let base = ModelTests.fixtures + "/" + name
        let data = try Data(contentsOf: URL(fileURLWithPath: base + "/gradients.json"))
        let json = try data.withUnsafeBytes { try JSON.parse($0) }
        func ints(_ value: JSON?) -> [Int] {
            guard case .array(let items)? = value else { return [] }
            return items.compactMap { if case .number(let v, _) = $0 { return Int(v) } else { return nil } }
        }
        guard case .array(let sequences)? = json["inputs"] else { throw ModelError.badInput("gradients.json") }
        return (sequences.map { ints($0) }, ints(json["labels"]), try SafetensorsFile(path: base + "/gradients.safetensors"))
    }

    /// Loss and every parameter's gradient against transformers' (padded batch with an attention mask).
    func checkAgainstPyTorch(_ name: String) throws {
        let model = try TrainableEncoder(folder: ModelTests.folder(name))
        let (inputs, labels, expected) = try Self.reference(name)
        XCTAssertEqual(inputs.map(\.count), [6, 2, 11])
        let loss = try model.lossAndGradients(inputs, labels: labels)
        try Self.assertMatchesPyTorch(loss: loss, model.parameters, expected, name)
    }

    /// The loss and every parameter's gradient against the reference file (encoders and decoders).
    static func assertMatchesPyTorch(loss: Double, _ parameters: ParameterSet, _ expected: SafetensorsFile, _ name: String) throws {
        XCTAssertEqual(loss, Double(try expected.tensor("loss").floats()[0]), accuracy: 1e-5, name)
        var compared = 0
        for p in parameters.all {
            let reference = try expected.tensor("grad." + p.name)
            XCTAssertEqual(p.shape, reference.shape, p.name)
            let a = p.grad.floats(), e = reference.floats()
            let scale = e.map { abs($0) }.max() ?? 0
            let error = zip(a, e).map { abs($0 - $1) }.max() ?? 0
            // the untouched token-type rows and unused positions have zero gradient in both
            XCTAssertLessThanOrEqual(error, max(scale, 1e-3) * 1e-4, "\(name) \(p.name): max error \(error), max |expected| \(scale)")
            compared += 1
        }
        XCTAssertEqual(compared + 1, expected.names.count, "\(name): every PyTorch gradient compared")
    }

    func testBertClassifierGradientsMatchPyTorch() throws { try checkAgainstPyTorch("bert_classifier") }
    func testRobertaClassifierGradientsMatchPyTorch() throws { try checkAgainstPyTorch("roberta_classifier") }

    /// Without dropout the trainable forward is the runtime's forward.
    func testLogitsMatchTheInferenceRuntime() throws {
        for name in ["bert_classifier", "roberta_classifier"] {
            let trainable = try TrainableEncoder(folder: ModelTests.folder(name))
            let runtime = try loadModel(folder: ModelTests.folder(name))
            let inputs = try Self.reference(name).inputs
            let logits = try trainable.logits(inputs).floats(), expected = try runtime.forward(inputs).logits!.flatMap { $0.floats() }
            XCTAssertEqual(logits.count, expected.count)
            for (a, e) in zip(logits, expected) { XCTAssertEqual(a, e, accuracy: 1e-5, name) }
        }
    }

    /// With dropout at every site (fixed by seed and step) the gradient is still exact:
    /// central differences on a sample of entries of every parameter.
    func testGradientsWithDropoutMatchFiniteDifferences() throws {
        let model = try TrainableEncoder(folder: ModelTests.folder("bert_classifier"))
        model.hiddenDropout = 0.2; model.attentionDropout = 0.2; model.classifierDropout = 0.2
        let (inputs, labels, _) = try Self.reference("bert_classifier")
        let dropout = DropoutStream(seed: 7, step: 4)
        model.parameters.zeroGrads()
        _ = try model.lossAndGradients(inputs, labels: labels, dropout: dropout)
        XCTAssertNotEqual(try model.logits(inputs, dropout: dropout).floats(), try model.logits(inputs).floats(), "dropout acts")
        var checked = 0
        for p in model.parameters.all {
            let grads = p.grad.floats()
            // the entries with the largest gradients, where finite differences are meaningful
            let order = grads.indices.sorted { abs(grads[$0]) > abs(grads[$1]) }.prefix(3)
            for i in order where abs(grads[i]) > 1e-3 {
                let saved = p.values[i], step: Float = 1e-2
                p.values[i] = saved + step
                let up = try model.lossOnly(inputs, labels: labels, dropout: dropout)
                p.values[i] = saved - step
                let down = try model.lossOnly(inputs, labels: labels, dropout: dropout)
                p.values[i] = saved
                let numeric = (up - down) / (2 * Double(step))
                XCTAssertEqual(numeric, Double(grads[i]), accuracy: 2e-3 + 0.03 * abs(numeric), "\(p.name)[\(i)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }
}

extension TrainableEncoder {
    func lossOnly(_ batch: [[Int]], labels: [Int], dropout: DropoutStream?) throws -> Double {
        try crossEntropy(try logits(batch, dropout: dropout), labels: labels).loss
    }
}
