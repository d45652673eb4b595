import Foundation
import Logging

/// A classifier ready to train, evaluate, predict or save: the network, its Hugging Face config, its
/// tokenizer, and what Sankshep learned about it (the decision threshold).
///
/// On disk it is a Hugging Face folder (`config.json`, `model.safetensors`, tokenizer files) plus
/// `sankshep.json` with the threshold and pooling, so `transformers` loads the same folder that
/// `sankshep predict` reads.
final class Classifier {
    let network: SequenceClassifier
    var config: ModelConfig
    let tokenizer: BertTokenizer
    /// The tokenizer files copied into every folder this classifier is saved to.
    let tokenizerFiles: [URL]
    /// Probability above which a comment is called hate speech.
    var threshold: Double

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
    /// seed-framework folder (`best_model_*.pt` with `encoder.*` and `classifier.0/3.*` keys), or a
    /// folder Sankshep wrote. A missing head is initialised from `seed` and said so in the log.
    static func load(from directory: URL, pooling: Pooling? = nil, dropout: Double? = nil, seed: Int = 42,
                     logger: Logger? = nil) throws -> Classifier {
        let (loadedConfig, loadedWeights, weightsFile) = try HuggingFaceDirectory.read(directory)
        var config = loadedConfig
        // Quantized compressed-tensors weights were read back as float: the config must say float.
        if CompressedTensorsQuantized.announcesQuantizedWeights(config) { config.raw["quantization_config"] = nil }
        let file = weightsFile.path
        var weights = loadedWeights
        let settings = SankshepSettings.read(from: directory)

        // Which head: the seed framework's MLP, or the Hugging Face head of the model type.
        let head: ClassifierHead
        let prefix = config.modelType == .bert ? "bert." : "distilbert."
        if let firstHead = weights["classifier.0.weight"], firstHead.shape.count == 2 {
            head = .seedMLP(hidden: firstHead.shape[0])
            config.numLabels = weights["classifier.3.weight"]?.shape.first ?? config.numLabels
        } else {
            head = .huggingFace(for: EncoderType(config))
            // A bare encoder (BertModel / DistilBertModel saved on its own) has no prefix.
            if !weights.names.contains(where: { $0.hasPrefix(prefix) }), weights["embeddings.word_embeddings.weight"] != nil {
                weights = weights.renamingPrefix("", to: prefix)
            }
            if let classifier = weights["classifier.weight"], classifier.shape.count == 2 {
                config.numLabels = classifier.shape[0]
            } else {
                config.numLabels = 1
            }
        }
        if let dropout {
            config.hiddenDropout = dropout
            config.attentionDropout = dropout
            config.classifierDropout = dropout
        }
        let tokenizer = try BertTokenizer(directory: directory)
        // An id the embedding table has no row for would only fail at the first comment that uses it.
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw CheckpointError(file: tokenizer.source, problem: "the tokenizer has \(tokenizer.vocabularySize) entries but the model's embedding table (vocab_size in config.json) has only \(config.vocabSize) rows")
        }
        let network = SequenceClassifier(shape: EncoderShape(config), head: head, numLabels: config.numLabels,
                                         pooling: pooling ?? settings?.pooling ?? .cls, dropoutSeed: UInt64(seed))
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
        if !missing.isEmpty {
            logger?.notice("\(file): no classification head (\(missing.count) tensors); it starts from random initialisation")
        }
        return Classifier(network: network, config: config, tokenizer: tokenizer,
                          tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: directory),
                          threshold: settings?.threshold ?? 0.5)
    }

    /// The parameters as named tensors, in layout order.
    func namedTensors() -> [(name: String, tensor: Tensor)] {
        network.store.views.map { ($0.name, network.store.tensor($0.name)) }
    }

    /// Writes a Hugging Face folder, plus `sankshep.json`. A pruned model's folder keeps its compact
    /// form (sparse-bitmask tensors, removed heads) and gets a dense `transformers/` export beside it,
    /// which today's `transformers` loads without extra packages (TransformersExport says why).
    func save(to directory: URL, extra: [String: String] = [:]) throws {
        try HuggingFaceDirectory.write(config: config, tensors: namedTensors(), tokenizerFiles: tokenizerFiles, to: directory)
        var extra = extra
        if TransformersExport.needed(for: config) {
            try writeTransformersExport(to: directory.appendingPathComponent(TransformersExport.folderName), extra: extra)
            extra["export"] = TransformersExport.folderName
        }
        try SankshepSettings(threshold: threshold, pooling: network.pooling, extra: extra).write(to: directory)
    }

    /// The dense, full-head Hugging Face folder of this model (its outputs are this model's).
    func writeTransformersExport(to directory: URL, extra: [String: String]) throws {
        let (denseConfig, denseTensors) = TransformersExport.dense(config: config, names: network.names, tensors: namedTensors())
        try HuggingFaceDirectory.write(config: denseConfig, tensors: denseTensors, tokenizerFiles: tokenizerFiles, to: directory)
        try SankshepSettings(threshold: threshold, pooling: network.pooling, extra: extra).write(to: directory)
    }
}

/// What Sankshep keeps beside a Hugging Face folder: the decision threshold and the pooling.
struct SankshepSettings: Codable, Equatable {
    var threshold: Double
    var pooling: Pooling
    var extra: [String: String] = [:]

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
