import Foundation
import Logging

/// A distillation setup that cannot work: one line naming the option and the problem.
struct DistillationError: Error, CustomStringConvertible, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Builds the untrained student of a distill stage.
enum StudentFactory {
    /// The student of `source`, with the teacher's dropout and pooling.
    /// - Parameter headHidden: width of the seed framework's MLP head, used when the teacher has that head.
    static func make(_ source: StudentSource, teacher: Classifier, headHidden: Int, seed: Int, logger: Logger? = nil) throws -> Classifier {
        let dropout = teacher.config.hiddenDropout
        let pooling = teacher.network.pooling
        switch source {
        case .preset(let name):
            guard let preset = ModelPreset.named(name) else {
                throw DistillationError("--student_preset: unknown preset '\(name)'; known: \(ModelPreset.all.map(\.name).joined(separator: ", "))")
            }
            return try fromPreset(preset, teacher: teacher, headHidden: headHidden, dropout: dropout, pooling: pooling, seed: seed)
        case .path(let path):
            let url = URL(fileURLWithPath: path)
            let files = FileManager.default
            guard files.fileExists(atPath: url.appendingPathComponent("config.json").path)
                    || files.fileExists(atPath: url.appendingPathComponent(SeedFolder.headFileName).path) else {
                throw DistillationError("--student_path \(path): no config.json there; expected a Hugging Face model folder or a seed framework folder")
            }
            return try Classifier.load(from: url, pooling: pooling, dropout: dropout, seed: seed, logger: logger)
        case .teacherLayers(let chosen):
            return try fromTeacherLayers(teacher, layers: chosen ?? Array(stride(from: 0, to: teacher.config.numLayers, by: 2)))
        }
    }

    /// A random-initialised preset with the bundled vocabulary; the seed head when the teacher has one.
    static func fromPreset(_ preset: ModelPreset, teacher: Classifier, headHidden: Int, dropout: Double, pooling: Pooling,
                           seed: Int) throws -> Classifier {
        let tokenizerDirectory = try BundledResources.tokenizerDirectory()
        guard case .seedMLP = teacher.network.head else {
            return try Classifier.fromPreset(preset, tokenizerDirectory: tokenizerDirectory, dropout: dropout, pooling: pooling, seed: seed)
        }
        let tokenizer = try TokenizerFolder.load(tokenizerDirectory)
        var config = preset.config(vocabularySize: tokenizer.vocabularySize, padTokenId: tokenizer.padId)
        config.hiddenDropout = dropout
        config.attentionDropout = dropout
        config.classifierDropout = dropout
        let network = SequenceClassifier(shape: EncoderShape(config), head: .seedMLP(hidden: headHidden), numLabels: 1,
                                         pooling: pooling, dropoutSeed: UInt64(seed))
        network.initializeRandomly(seed: UInt64(seed))
        return Classifier(network: network, config: config, tokenizer: tokenizer,
                          tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerDirectory))
    }

    /// A student made of the teacher's embeddings, the chosen encoder layers (in order) and its head,
    /// as DistilBERT was initialised from BERT. It shares the teacher's tokenizer.
    static func fromTeacherLayers(_ teacher: Classifier, layers: [Int]) throws -> Classifier {
        let teacherLayers = teacher.config.numLayers
        guard !layers.isEmpty, let bad = Optional(layers.filter { $0 < 0 || $0 >= teacherLayers }), bad.isEmpty else {
            throw DistillationError("--student_layers \(layers.map(String.init).joined(separator: ",")): the teacher has layers 0…\(teacherLayers - 1)")
        }
        let headLayers = teacher.network.head.inputLayers
        guard headLayers <= layers.count + 1 else {
            throw DistillationError("--student_layers \(layers.map(String.init).joined(separator: ",")): the teacher's head reads the last \(headLayers) hidden states (use_multi_layers), so a student of its layers needs at least \(headLayers - 1)")
        }
        var config = teacher.config
        config.numLayers = layers.count
        // A head-pruned teacher: student layer i has the heads of teacher layer layers[i].
        // An ALBERT teacher's student is ALBERT with fewer repeats of the same shared layer (its heads too).
        if config.modelType != .albert {
            config.prunedHeads = Dictionary(uniqueKeysWithValues: layers.enumerated().compactMap { i, t in
                teacher.config.prunedHeads[t].map { (i, $0) }
            })
        }
        let source = teacher.network
        let network = SequenceClassifier(shape: EncoderShape(config), head: source.head, numLabels: source.numLabels,
                                         pooling: source.pooling, dropoutSeed: source.dropoutSeed)
        // Layer i of the student is teacher layer layers[i]; everything else keeps its name.
        var from: [String: String] = [:]
        for (i, t) in layers.enumerated() where !network.shape.sharesLayers {
            let s = network.names.layers[i], r = source.names.layers[t]
            for (a, b) in [(s.query, r.query), (s.key, r.key), (s.value, r.value), (s.attentionOutput, r.attentionOutput),
                           (s.attentionNorm, r.attentionNorm), (s.ffnIn, r.ffnIn), (s.ffnOut, r.ffnOut), (s.outputNorm, r.outputNorm)] {
                from[a + ".weight"] = b + ".weight"
                from[a + ".bias"] = b + ".bias"
            }
        }
        for view in network.store.views {
            network.store.setValues(view.name, from: source.store.tensor(from[view.name] ?? view.name))
        }
        return Classifier(network: network, config: config, tokenizer: teacher.tokenizer, tokenizerFiles: teacher.tokenizerFiles,
                          threshold: teacher.threshold)
    }

    /// Whether two tokenizers turn every text into the same ids: same vocabulary, same normalisation.
    static func sameTokenizer(_ a: any Tokenizer, _ b: any Tokenizer) -> Bool {
        a.producesSameIds(as: b)
    }
}
