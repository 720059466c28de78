import Foundation
import LopperCore
import LopperIO

extension ClassifierSetup {
    /// The transformers class that loads this model with its head.
    var classifierClass: String {
        let family = ["bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "camembert": "Camembert"]
        return (family[model.config.modelType] ?? "Bert") + "ForSequenceClassification"
    }

    /// config.json with the head's labels (id2label, label2id) and, for a new head, its class.
    func configText(labelNames: [String]) -> String {
        guard case .object(var members) = configJSON else { return configJSON.text }
        func set(_ key: String, _ value: JSON) {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        }
        set("id2label", .object(labelNames.enumerated().map { (String($0), .string($1)) }))
        set("label2id", .object(labelNames.enumerated().map { ($1, .int($0)) }))
        members.removeAll { $0.0 == "num_labels" }
        if !createdTensors.isEmpty { set("architectures", .array([.string(classifierClass)])) }
        return JSON.object(members).text + "\n"
    }

    /// Writes the trained classifier (see `writeTrainedModel`), config.json with the labels.
    /// Names stay the base's, so that `prune` pairs them (transformers loads a head beside an
    /// encoder saved without its `bert.` prefix).
    public func write(to folder: String, base: String, labelNames: [String], metadata: [String: String],
                      overwrite: Bool) throws {
        try writeTrainedModel(model.parameters, base: base, to: folder, created: createdTensors,
                              config: configText(labelNames: labelNames), metadata: metadata, overwrite: overwrite)
    }
}
