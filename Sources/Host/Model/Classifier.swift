import Foundation
import Logging

/// A classifier ready to train, evaluate, predict or save: the network, its Hugging Face config, its
/// tokenizer, and what Sankshep learned about it (the decision threshold).
///
/// On disk it is a Hugging Face folder (`config.json`, `model.safetensors`, tokenizer files) plus
/// `sankshep.json` with the threshold, pooling and max_length, so `transformers` loads the same folder
/// that `sankshep predict` reads.
final class Classifier {
    let network: SequenceClassifier
    var config: ModelConfig
    let tokenizer: BertTokenizer
    /// The tokenizer files copied into every folder this classifier is saved to.
    let tokenizerFiles: [URL]
    /// Probability above which a comment is called hate speech.
    var threshold: Double
    /// The tokens per comment it was trained and evaluated with (`--max_length`), saved in
    /// `sankshep.json` so `predict` and `eval` use it; nil when unknown (a folder from elsewhere).
    var maxLength: Int?

    init(network: SequenceClassifier, config: ModelConfig, tokenizer: BertTokenizer, tokenizerFiles: [URL], threshold: Double = 0.5) {
        self.network = network
        self.config = config
        self.tokenizer = tokenizer
        self.tokenizerFiles = tokenizerFiles
        self.threshold = threshold
    }

    var parameterCount: Int { network.store.count }

    /// A random-initialised classifier of a built-in preset with the bundled vocabulary.
    static func fromPreset(_ preset: ModelPreset, tokenizerDirectory: URL, dropout: Double, pooling: Pooling, seed: Int) throws -> Classifier {
        let tokenizer = try BertTokenizer(directory: tokenizerDirectory)
        var config = preset.config(vocabularySize: tokenizer.vocabularySize, padTokenId: tokenizer.padId)
        config.hiddenDropout = dropout
        config.attentionDropout = dropout
        config.classifierDropout = dropout
        let network = SequenceClassifier(shape: EncoderShape(config), head: .huggingFace(for: EncoderType(config)),
                                         numLabels: 1, pooling: pooling, dropoutSeed: UInt64(seed))
        network.initializeRandomly(seed: UInt64(seed))
        return Classifier(network: network, config: config, tokenizer: tokenizer,
                          tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerDirectory))
    }

    /// Loads a Hugging Face folder (BERT or DistilBERT, with or without a classification head), a
    /// seed-framework folder (`best_model_*.pt` with `encoder.*` and `classifier.0/3.*` keys, or either
    /// folder of `SeedFolder`), or a folder Sankshep wrote. A missing head is initialised from `seed`
    /// and said so in the log, or refused with `requireTrainedHead` (predict and eval).
    ///
    /// A head has 1 logit or 2 (`BinaryReadout`); its row count tells, whatever `num_labels` says. A
    /// Hugging Face head's `id2label` must name as many labels as it has rows, and a two-label head
    /// whose `id2label` makes index 0 the positive class is loaded with its rows (and names) swapped.
    /// - Parameter pooling: the seed head's pooling when the folder records none (`model_config.json`
    ///   or `sankshep.json`).
    static func load(from directory: URL, pooling: Pooling? = nil, dropout: Double? = nil, seed: Int = 42,
                     requireTrainedHead: Bool = false, logger: Logger? = nil) throws -> Classifier {
        let seedFolder = try SeedFolder.read(directory)
        let (loadedConfig, loadedWeights, weightsFile) = try seedFolder.map { ($0.config, $0.weights, $0.weightsFile) }
            ?? HuggingFaceDirectory.read(directory)
        var config = loadedConfig
        // Quantized compressed-tensors weights were read back as float: the config must say float.
        if CompressedTensorsQuantized.announcesQuantizedWeights(config) { config.raw["quantization_config"] = nil }
        let file = weightsFile.path
        var weights = loadedWeights
        let settings = SankshepSettings.read(from: directory)

        // Which head: the seed framework's MLP, or the Hugging Face head of the model type.
        let head: ClassifierHead
        let prefix = config.modelType == .bert ? "bert." : "distilbert."
        if let seedFolder {
            head = seedFolder.head
        } else if let firstHead = weights["classifier.0.weight"], firstHead.shape.count == 2 {
            let layers = firstHead.shape[1] == SeedFolder.multiLayerCount * config.hiddenSize ? SeedFolder.multiLayerCount : 1
            guard layers <= config.numLayers + 1 else {
                throw CheckpointError(file: file, problem: "'classifier.0.weight' reads the last \(layers) hidden states, the encoder has \(config.numLayers + 1)")
            }
            head = .seedMLP(hidden: firstHead.shape[0], layers: layers)
        } else {
            head = .huggingFace(for: EncoderType(config))
            // A bare encoder (BertModel / DistilBertModel saved on its own) has no prefix.
            if !weights.names.contains(where: { $0.hasPrefix(prefix) }), weights["embeddings.word_embeddings.weight"] != nil {
                weights = weights.renamingPrefix("", to: prefix)
            }
        }
        let outputName = ModelParameterNames(shape: EncoderShape(config), head: head).headOutput + ".weight"
        if let output = weights[outputName], output.shape.count == 2 {
            config.numLabels = output.shape[0]
            guard BinaryReadout.supportedLabels.contains(config.numLabels) else {
                throw CheckpointError(file: file, problem: "'\(outputName)' has \(config.numLabels) rows: a hate-speech head has 1 logit (sigmoid) or 2 (softmax)")
            }
            // A seed head has no id2label of its own (its encoder's config.json may carry one that is not about it).
            let isSeedHead: Bool
            if case .seedMLP = head { isSeedHead = true } else { isSeedHead = false }
            if !isSeedHead { try orderLabels(&config, &weights, outputName: outputName, directory: directory, logger: logger) }
        } else {
            config.numLabels = 1
        }
        if let dropout {
            config.hiddenDropout = dropout
            config.attentionDropout = dropout
            config.classifierDropout = dropout
        } else if let headDropout = seedFolder?.dropout {
            config.classifierDropout = headDropout
        }
        let tokenizerDirectory = seedFolder?.tokenizerDirectory ?? directory
        let tokenizer = try BertTokenizer(directory: tokenizerDirectory)
        // An id the embedding table has no row for would only fail at the first comment that uses it.
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(file: tokenizer.source, problem: "the tokenizer has \(tokenizer.vocabularySize) entries but the model's embedding table (vocab_size in config.json) has only \(config.vocabSize) rows")
        }
        let network = SequenceClassifier(shape: EncoderShape(config), head: head, numLabels: config.numLabels,
                                         pooling: seedFolder?.pooling ?? pooling ?? settings?.pooling ?? .cls, dropoutSeed: UInt64(seed))
        network.initializeRandomly(seed: UInt64(seed))
        // The head (and BERT's pooler) may be absent from a pre-trained encoder: they start fresh.
        let encoderNames = Set(network.names.encoderParameterNames())
        var initialisedFresh: [String] = []
        try weights.load(into: network.store, file: file, optional: { name in
            let isHead = !encoderNames.contains(name) || name.contains(".pooler.")
            if isHead { initialisedFresh.append(name) }
            return isHead
        })
        let missing = initialisedFresh.filter { weights[$0] == nil }
        let headNames = [network.names.headHidden, network.names.headOutput].flatMap { [$0 + ".weight", $0 + ".bias"] }
        let missingHead = missing.filter(headNames.contains)
        if requireTrainedHead, !missingHead.isEmpty {
            throw CheckpointError(file: directory.path, problem: "no trained classification head (\(missingHead.joined(separator: ", ")) absent): its probabilities would be a random head's; give a trained model (a stage's folder, a …ForSequenceClassification checkpoint, or a seed folder with classifier.pt)")
        }
        if !missing.isEmpty {
            logger?.notice("\(file): no classification head (\(missing.count) tensors); it starts from random initialisation")
        }
        let classifier = Classifier(network: network, config: config, tokenizer: tokenizer,
                                    tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerDirectory),
                                    threshold: settings?.threshold ?? 0.5)
        classifier.maxLength = settings?.maxLength
        // A head-pruned model's folder stores the removed heads as zeros (for transformers 5, which
        // has no head pruning); sankshep.json names them, and they are removed again here.
        if let removed = settings?.prunedHeads, !removed.isEmpty, config.prunedHeads.isEmpty {
            let keep = (0..<config.numLayers).map { layer in (0..<config.numHeads).map { !(removed[String(layer)] ?? []).contains($0) } }
            do {
                return try StructuredHeads.remove(classifier, keep: keep)
            } catch {
                throw CheckpointError(file: directory.appendingPathComponent(SankshepSettings.fileName).path, problem: "pruned_heads: \(error)")
            }
        }
        return classifier
    }

    /// Checks a Hugging Face head's `id2label` against its rows, and puts a two-label head's positive
    /// class at index 1 (`BinaryReadout.positiveIndex`): its rows are swapped, and its names with them,
    /// so the folders this classifier is saved to say the same.
    private static func orderLabels(_ config: inout ModelConfig, _ weights: inout StateDict, outputName: String,
                                    directory: URL, logger: Logger?) throws {
        guard let value = config.raw["id2label"], !value.isNull else { return }
        let configFile = directory.appendingPathComponent("config.json").path
        guard let object = value.objectValue else { throw CheckpointError(file: configFile, problem: "id2label is \(value.summary), not an object") }
        guard object.count == config.numLabels else {
            throw CheckpointError(file: configFile, problem: "id2label names \(object.count) labels, but the classifier ('\(outputName)') has \(config.numLabels) rows")
        }
        var names: [Int: String] = [:]
        for (key, name) in object {
            guard let index = Int(key), (0..<config.numLabels).contains(index), let text = name.stringValue else {
                throw CheckpointError(file: configFile, problem: "id2label entry \"\(key)\": \(name.summary) is not an index in 0..<\(config.numLabels) with a name")
            }
            names[index] = text
        }
        guard config.numLabels == 2, BinaryReadout.positiveIndex(id2label: names) == 0,
              let weight = weights[outputName], let bias = weights[String(outputName.dropLast(".weight".count)) + ".bias"],
              bias.count == 2, let zero = names[0], let one = names[1], zero != one else { return }
        logger?.notice("\(configFile): id2label makes index 0 (\"\(zero)\") the positive class; its two rows are swapped so that index 1 is")
        let width = weight.count / 2
        weights[outputName] = Tensor(shape: weight.shape, scalars: Array(weight.scalars[width...] + weight.scalars[..<width]))
        weights[String(outputName.dropLast(".weight".count)) + ".bias"] = Tensor(shape: bias.shape, scalars: [bias.scalars[1], bias.scalars[0]])
        config.raw["id2label"] = .object(["0": .string(one), "1": .string(zero)])
        config.raw["label2id"] = .object([one: .int(0), zero: .int(1)])
    }

    /// The parameters as named tensors, in layout order.
    func namedTensors() -> [(name: String, tensor: Tensor)] {
        network.store.views.map { ($0.name, network.store.tensor($0.name)) }
    }

    /// Writes a Hugging Face folder that today's `transformers` loads, plus `sankshep.json`. A pruned
    /// model is stored dense (TransformersExport says why): its zeros as zeros, removed heads put
    /// back as zero rows and columns; `sankshep export --format compressed-tensors` writes the compact
    /// sparse-bitmask form on request.
    func save(to directory: URL, extra: [String: String] = [:]) throws {
        try writeTransformersExport(to: directory, extra: extra)
        HuggingFaceDirectory.removeStale([QuantizedClassifier.weightsFileName] + QuantizedClassifier.legacyExportFolders, in: directory)
    }

    /// The dense, full-head Hugging Face folder of this model (its outputs are this model's).
    func writeTransformersExport(to directory: URL, extra: [String: String]) throws {
        let (denseConfig, denseTensors) = TransformersExport.dense(config: config, names: network.names, tensors: namedTensors())
        try HuggingFaceDirectory.write(config: denseConfig, tensors: denseTensors, tokenizerFiles: tokenizerFiles, to: directory)
        try settings(extra: extra).write(to: directory)
    }

    /// The compact folder of a pruned model: every 2-D weight at least `minimumSparsity` zeros in
    /// compressed-tensors' sparse-bitmask layout, removed heads removed (`pruned_heads`). It loads in
    /// Sankshep and in `transformers` 4.x with compressed-tensors ≤ 0.14; today's versions load the
    /// dense folder `save` writes.
    func writeSparseBitmaskExport(to directory: URL, extra: [String: String], minimumSparsity: Double = 0.1) throws {
        var compact = config
        let store = network.store
        let targets = store.views.filter { view in
            guard view.name.hasSuffix(".weight"), view.shape.count == 2, view.count > 0 else { return false }
            var zeros = 0
            for index in view.offset..<(view.offset + view.count) where store.values[index] == 0 { zeros += 1 }
            return Double(zeros) / Double(view.count) >= minimumSparsity
        }.map { String($0.name.dropLast(".weight".count)) }
        let nonZero = nonZeroParameterCount
        compact.raw["quantization_config"] = targets.isEmpty ? nil
            : SparseBitmask.quantizationConfig(targets: targets, globalSparsity: 1 - Double(nonZero) / Double(max(parameterCount, 1)))
        try HuggingFaceDirectory.write(config: compact, tensors: namedTensors(), tokenizerFiles: tokenizerFiles, to: directory)
        try settings(extra: extra).write(to: directory)
    }

    /// This model's `sankshep.json`.
    func settings(extra: [String: String]) -> SankshepSettings {
        var settings = SankshepSettings(threshold: threshold, pooling: network.pooling, maxLength: maxLength, extra: extra)
        if !config.prunedHeads.isEmpty {
            settings.prunedHeads = Dictionary(uniqueKeysWithValues: config.prunedHeads.map { (String($0.key), $0.value) })
        }
        return settings
    }
}

/// What Sankshep keeps beside a Hugging Face folder: the decision threshold and the pooling.
struct SankshepSettings: Codable, Equatable {
    var threshold: Double
    var pooling: Pooling
    /// Tokens per comment the model was trained with; `predict` and `eval` default to it.
    var maxLength: Int?
    /// Attention heads removed by structured pruning (layer → original head indices), which the
    /// folder's weights hold as zeros; loading removes them again.
    var prunedHeads: [String: [Int]]?
    var extra: [String: String] = [:]

    enum CodingKeys: String, CodingKey {
        case threshold, pooling, extra
        case maxLength = "max_length"
        case prunedHeads = "pruned_heads"
    }

    init(threshold: Double, pooling: Pooling, maxLength: Int? = nil, extra: [String: String] = [:]) {
        self.threshold = threshold
        self.pooling = pooling
        self.maxLength = maxLength
        self.extra = extra
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        threshold = try container.decode(Double.self, forKey: .threshold)
        pooling = try container.decode(Pooling.self, forKey: .pooling)
        maxLength = try container.decodeIfPresent(Int.self, forKey: .maxLength)
        prunedHeads = try container.decodeIfPresent([String: [Int]].self, forKey: .prunedHeads)
        extra = try container.decodeIfPresent([String: String].self, forKey: .extra) ?? [:]
    }

    static let fileName = "sankshep.json"

    static func read(from directory: URL) -> SankshepSettings? {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(fileName)) else { return nil }
        return try? JSONDecoder().decode(SankshepSettings.self, from: data)
    }

    func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: directory.appendingPathComponent(Self.fileName))
    }
}

extension Pooling: Codable {}

extension EncoderType {
    init(_ config: ModelConfig) { self = config.modelType == .bert ? .bert : .distilbert }
}

extension Classifier {
    /// An independent copy: same config, tokenizer and threshold, its own parameters.
    func copy() -> Classifier {
        let copy = SequenceClassifier(shape: network.shape, head: network.head, numLabels: network.numLabels,
                                      pooling: network.pooling, dropoutSeed: network.dropoutSeed)
        copy.store.values.update(from: network.store.values, count: network.store.count)
        return Classifier(network: copy, config: config, tokenizer: tokenizer, tokenizerFiles: tokenizerFiles, threshold: threshold)
    }
}
