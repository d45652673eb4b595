import Foundation
import Testing
@testable import Host

/// Small models and data for the pruning tests.
enum PruningTestSupport {
    /// A BERT classifier whose linear layers hold most of its weights (vocabulary of 64), so file
    /// sizes show what sparse storage saves.
    static func linearHeavyClassifier(seed: UInt64 = 7) throws -> Classifier {
        try smallBert(heads: 2, intermediateSize: 256, seed: seed)
    }

    /// A BERT classifier with 4 heads of 16 per layer (2 layers, hidden 64), for head removal.
    static func fourHeadClassifier(seed: UInt64 = 11) throws -> Classifier {
        try smallBert(heads: 4, intermediateSize: 128, seed: seed)
    }

    /// 2 layers, hidden 64, vocabulary 64, random weights, the first 64 entries of the bundled vocabulary.
    static func smallBert(heads: Int, intermediateSize: Int, seed: UInt64) throws -> Classifier {
        let tokenizerFolder = try smallVocabularyFolder()
        let tokenizer = try BertTokenizer(directory: tokenizerFolder)
        let config = ModelConfig(modelType: .bert, vocabSize: 64, hiddenSize: 64, numLayers: 2, numHeads: heads,
                                 intermediateSize: intermediateSize, maxPositionEmbeddings: 16, padTokenId: 0, numLabels: 1)
        let network = SequenceClassifier(shape: EncoderShape(config), head: .bertPooler, numLabels: 1, dropoutSeed: seed)
        network.initializeRandomly(seed: seed)
        return Classifier(network: network, config: config, tokenizer: tokenizer,
                          tokenizerFiles: HuggingFaceDirectory.tokenizerFiles(in: tokenizerFolder))
    }

    /// vocab.txt with the bundled vocabulary's first 64 entries (the special tokens among them) and its
    /// tokenizer_config.json: a tokenizer whose ids the 64-row embedding table can read. Made once per
    /// test process (a static let is initialised once, whichever test gets there first).
    static func smallVocabularyFolder() throws -> URL { try smallVocabulary.get() }

    private static let smallVocabulary = Result<URL, Error> {
        let folder = try Fixtures.temporaryFolder("vocabulary64")
        let entries = try String(contentsOf: Fixtures.bundledTokenizer.appendingPathComponent("vocab.txt"), encoding: .utf8)
            .split(separator: "\n").prefix(64)
        try FileManager.default.copyItem(at: Fixtures.bundledTokenizer.appendingPathComponent("tokenizer_config.json"),
                                         to: folder.appendingPathComponent("tokenizer_config.json"))
        try Data((entries.joined(separator: "\n") + "\n").utf8).write(to: folder.appendingPathComponent("vocab.txt"))
        return folder
    }

    /// `count` token sequences of ids below 64 ([CLS] = 2 … [SEP] = 3), lengths 3…12.
    static func sequences(_ count: Int, seed: UInt64 = 1) -> [[Int]] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let length = Int.random(in: 1...10, using: &generator)
            return [2] + (0..<length).map { _ in Int.random(in: 5..<64, using: &generator) } + [3]
        }
    }

    static func logits(_ classifier: Classifier, _ sequences: [[Int]]) throws -> [Float] {
        try Evaluator.probabilities(network: classifier.network, sequences: sequences, rows: Array(sequences.indices),
                                padID: 0, batchSize: 8)
    }

    static func plan(_ method: String, registry: PluginRegistry, options: [String: String] = [:]) throws -> PruningPlan {
        let schema = try #require(registry.methodSchemas.first { $0.name == method })
        var resolved = Dictionary(uniqueKeysWithValues: schema.options.map { ($0.name, $0.defaultValue) })
        resolved.merge(options) { _, given in given }
        var stage = PruneStage()
        stage.method = method
        return try PruningPlan(stage: stage, method: ResolvedMethod(schema: schema, options: resolved), registry: registry, label: "test")
    }

    static func settings(epochs: Int) -> TrainingSettings {
        TrainingSettings(batchSize: 8, learningRate: 3e-3, epochs: epochs, warmupRatio: 0, weightDecay: 0.01, gradientClipNorm: 1,
                         earlyStoppingPatience: 10, scheduler: .linear, loss: .bce, focalAlpha: 0.25, focalGamma: 2,
                         useClassWeights: false, freezeBase: false, seed: 5)
    }
}

@Suite("Pruning: masks, healing, sparse storage and structured removal", .serialized)
struct PruningTests {
    let registry: PluginRegistry
    init() throws { registry = try PluginTestSupport.builtInRegistry() }

    @Test("masked weights stay exactly zero through every training step while the others learn")
    func masksHoldThroughTraining() throws {
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let network = classifier.network
        let layers = PrunableLayer.select(network, .all)
        let masks = try Masker(plan: PruningTestSupport.plan("magnitude", registry: registry), layers: layers, stats: [:])
            .masks(for: network, sparsity: 0.5)
        masks.enforce(on: network.store)
        let before = layers.map { network.store.tensor($0.weightName) }
        let sequences = PruningTestSupport.sequences(48)
        let labels = sequences.indices.map { $0 % 2 }
        var stepsChecked = 0
        _ = try Trainer(settings: PruningTestSupport.settings(epochs: 2)).train(
            classifier, sequences: sequences, labels: labels, train: Array(0..<40), validation: Array(40..<48), label: "test",
            checkpoint: nil, resume: false,
            hooks: TrainingHooks(beforeStep: nil, afterStep: {
                masks.enforce(on: network.store)
                for layer in layers {
                    let mask = masks.mask(layer.name)!
                    let weights = network.store.tensor(layer.weightName).scalars
                    #expect(zip(mask, weights).allSatisfy { $0.0 == 1 || $0.1 == 0 }, "\(layer.name)")
                }
                stepsChecked += 1
            }))
        #expect(stepsChecked == 10)   // 5 batches × 2 epochs
        for (layer, old) in zip(layers, before) {
            let mask = masks.mask(layer.name)!
            let now = network.store.tensor(layer.weightName).scalars
            #expect(zip(mask, now).allSatisfy { $0.0 == 1 || $0.1 == 0 }, "\(layer.name)")
            // The kept weights did train.
            #expect(zip(zip(mask, now), old.scalars).contains { $0.0.0 == 1 && $0.0.1 != $0.1 }, "\(layer.name)")
        }
    }

    @Test("magnitude, wanda and gradual's criterion at 50% reach 50% in every layer, ± one weight per row for wanda")
    func eachMethodReachesSparsity() throws {
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let network = classifier.network
        let layers = PrunableLayer.select(network, .all)
        let stats = try ActivationCollector.collect(network: network, layers: layers, sequences: PruningTestSupport.sequences(20),
                                                    rows: Array(0..<20), padID: 0)
        #expect(layers.allSatisfy { stats[$0.name]?.inputL2Norm?.count == $0.cols })
        for method in ["magnitude", "wanda", "gradual"] {
            let plan = try PruningTestSupport.plan(method, registry: registry)
            let masks = try Masker(plan: plan, layers: layers, stats: stats).masks(for: network, sparsity: 0.5)
            for layer in layers {
                let pruned = masks.mask(layer.name)!.filter { $0 == 0 }.count
                // WANDA compares within each output row: round(0.5 · cols) per row.
                let expected = method == "wanda" ? layer.rows * Int((0.5 * Double(layer.cols)).rounded()) : layer.count / 2
                #expect(abs(pruned - expected) <= (method == "wanda" ? layer.rows : 1), "\(method) \(layer.name): \(pruned) of \(layer.count)")
            }
        }
    }

    @Test("wanda needs the calibration statistics and says so when none were collected")
    func wandaWithoutStatistics() throws {
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let layers = PrunableLayer.select(classifier.network, .ffn)
        #expect(layers.count == 4)
        let plan = try PruningTestSupport.plan("wanda", registry: registry)
        #expect(plan.criterion.neededStatistics != 0)
        #expect(throws: PluginError.self) { try Masker(plan: plan, layers: layers, stats: [:]).masks(for: classifier.network, sparsity: 0.5) }
    }

    @Test("global scope ranks all layers together: the total is exact while layers differ")
    func globalMagnitude() throws {
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let network = classifier.network
        // Make layer 1's FFN weights large, so a global ranking prunes them less.
        let big = network.names.layers[1].ffnIn + ".weight"
        network.store.setValues(big, from: Tensor(shape: network.store.tensor(big).shape, scalars: network.store.tensor(big).scalars.map { $0 * 10 }))
        let layers = PrunableLayer.select(network, .encoder)
        let masks = try Masker(plan: PruningTestSupport.plan("magnitude", registry: registry, options: ["scope": "global"]),
                               layers: layers, stats: [:]).masks(for: network, sparsity: 0.5)
        let pruned = layers.map { masks.mask($0.name)!.filter { $0 == 0 }.count }
        let total = layers.reduce(0) { $0 + $1.count }
        #expect(pruned.reduce(0, +) == total / 2)
        let bigIndex = layers.firstIndex { $0.weightName == big }!
        #expect(Double(pruned[bigIndex]) < 0.1 * Double(layers[bigIndex].count))
    }

    /// Saves `classifier` dense, prunes 50% of every layer `all` selects by magnitude, exports that compactly
    /// (`sankshep export --format compressed-tensors`);
    /// returns both folders, the pruned model and the ratio of their weights files.
    func saveDenseAndHalfPruned(_ classifier: Classifier, in folder: URL) throws
        -> (dense: URL, sparse: URL, pruned: Classifier, ratio: Double) {
        let dense = folder.appendingPathComponent("dense")
        try classifier.save(to: dense)
        let layers = PrunableLayer.select(classifier.network, .all)
        let masks = try Masker(plan: PruningTestSupport.plan("magnitude", registry: registry), layers: layers, stats: [:])
            .masks(for: classifier.network, sparsity: 0.5)
        masks.enforce(on: classifier.network.store)
        let pruned = try PruningStage.makePermanent(classifier, masks: masks, layers: layers, structure: .none, logger: .init(label: "test"))
        let sparse = folder.appendingPathComponent("sparse")
        try pruned.writeSparseBitmaskExport(to: sparse, extra: [:])
        return (dense, sparse, pruned, Double(try Self.weightsFileSize(sparse)) / Double(try Self.weightsFileSize(dense)))
    }

    static func weightsFileSize(_ folder: URL) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("model.safetensors").path)[.size] as! Int
    }

    @Test("a 50%-sparse model's file is at most 0.65× the dense file and reloads to identical outputs")
    func sparseFileShrinksAndReloads() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let (_, sparse, pruned, ratio) = try saveDenseAndHalfPruned(classifier, in: folder)
        #expect(ratio <= 0.65, "sparse / dense = \(ratio)")
        // The file holds the compressed-tensors layout, and the config announces it.
        let file = try SafeTensorsFile(contentsOf: sparse.appendingPathComponent("model.safetensors"))
        let query = classifier.network.names.layers[0].query
        for part in SparseBitmask.parts { #expect(file.entry(named: query + "." + part) != nil, "\(part)") }
        #expect(file.entry(named: query + ".weight") == nil)
        #expect(file.entry(named: query + ".bitmask")?.shape == [64, 8])
        let config = try ModelConfig.read(sparse.appendingPathComponent("config.json"))
        #expect(SparseBitmask.targets(in: config) == Set(PrunableLayer.select(classifier.network, .all).map(\.name)))

        let reloaded = try Classifier.load(from: sparse)
        for view in classifier.network.store.views {
            #expect(reloaded.network.store.tensor(view.name) == pruned.network.store.tensor(view.name), "\(view.name)")
        }
        let sequences = PruningTestSupport.sequences(12)
        #expect(try PruningTestSupport.logits(reloaded, sequences) == PruningTestSupport.logits(pruned, sequences))
        // Exporting the reloaded model again keeps it sparse.
        let again = folder.appendingPathComponent("again")
        try reloaded.writeSparseBitmaskExport(to: again, extra: [:])
        #expect(try Self.weightsFileSize(again) == Self.weightsFileSize(sparse))
        // The model folder itself is dense F32 (today's transformers and compressed-tensors load no
        // sparse-bitmask), the zeros as zeros: the same outputs, the dense model's size.
        let saved = folder.appendingPathComponent("saved")
        try pruned.save(to: saved)
        let savedFile = try SafeTensorsFile(contentsOf: saved.appendingPathComponent("model.safetensors"))
        #expect(savedFile.entries.allSatisfy { $0.dtype == .f32 } && savedFile.entry(named: query + ".bitmask") == nil)
        #expect(try ModelConfig.read(saved.appendingPathComponent("config.json")).raw["quantization_config"] == nil)
        #expect(try PruningTestSupport.logits(Classifier.load(from: saved), sequences) == PruningTestSupport.logits(pruned, sequences))
    }

    @Test("the word embeddings are pruned as E^T on one-hot tokens: wanda keeps, per hidden dimension, the tokens the calibration uses")
    func embeddingsPrunedAsTransposedLinear() throws {
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let network = classifier.network
        let layers = PrunableLayer.select(network, .all)
        let embedding = try #require(layers.first)
        #expect(embedding.kind == .embedding && embedding.weightName == network.names.wordEmbeddings)
        #expect(embedding.presentedTransposed && embedding.presentedRows == 64 && embedding.presentedCols == 64)
        #expect(PrunableLayer.select(network, .linear).allSatisfy { $0.kind != .embedding })
        #expect(PrunableLayer.select(network, .embeddings) == [embedding])

        // Calibration comments use only tokens 2, 3 and 5..<40: ||X_j|| = sqrt(count of j).
        let sequences = PruningTestSupport.sequences(30).map { $0.map { $0 >= 40 ? 5 + $0 % 35 : $0 } }
        let stats = try ActivationCollector.collect(network: network, layers: [embedding], sequences: sequences,
                                                    rows: Array(sequences.indices), padID: 0)
        let norms = try #require(stats[embedding.name]?.inputL2Norm)
        let counts = (0..<64).map { token in sequences.reduce(0) { $0 + $1.filter { $0 == token }.count } }
        #expect(norms == counts.map { Float(Double($0).squareRoot()) })
        #expect(stats[embedding.name]?.inputAbsMax == counts.map { $0 > 0 ? 1 : 0 })

        let plan = try PruningTestSupport.plan("wanda", registry: registry)
        let mask = try #require(try Masker(plan: plan, layers: [embedding], stats: stats).masks(for: network, sparsity: 0.5).mask(embedding.name))
        let weights = network.store.tensor(embedding.weightName).scalars   // (vocab, H)
        for c in 0..<64 {
            // Column c of E is row c of E^T: half of the tokens go, the lowest |E[t, c]| · sqrt(count t) first.
            let kept = (0..<64).filter { mask[$0 * 64 + c] == 1 }
            let score = { (t: Int) in abs(weights[t * 64 + c]) * norms[t] }
            #expect(kept.count == 32, "hidden dimension \(c)")
            let lowestKept = kept.map(score).min()!, highestPruned = (0..<64).filter { mask[$0 * 64 + c] == 0 }.map(score).max()!
            #expect(highestPruned <= lowestKept, "hidden dimension \(c)")
            // A token the calibration never used scores 0: it is never kept over a used one.
            #expect(kept.allSatisfy { counts[$0] > 0 } || (0..<64).filter { counts[$0] > 0 }.allSatisfy { kept.contains($0) })
        }
    }

    @Test("with the embeddings pruned, teacher-small's 50%-sparse file is at most 0.65× the dense one and reloads to identical outputs")
    func presetFileShrinksWithEmbeddings() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let classifier = try Classifier.fromPreset(.teacherSmall, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1,
                                                   pooling: .cls, seed: 3)
        let (_, sparse, pruned, ratio) = try saveDenseAndHalfPruned(classifier, in: folder)
        #expect(ratio <= 0.65, "sparse / dense = \(ratio)")
        let file = try SafeTensorsFile(contentsOf: sparse.appendingPathComponent("model.safetensors"))
        let words = String(classifier.network.names.wordEmbeddings.dropLast(".weight".count))
        #expect(file.entry(named: words + ".bitmask")?.shape == [classifier.config.vocabSize, 16])
        let reloaded = try Classifier.load(from: sparse)
        #expect(reloaded.network.store.tensor(words + ".weight") == pruned.network.store.tensor(words + ".weight"))
        let sequences = PruningTestSupport.sequences(12)
        #expect(try PruningTestSupport.logits(reloaded, sequences) == PruningTestSupport.logits(pruned, sequences))
    }

    @Test("a sparse-bitmask group whose offsets disagree with its bitmask is refused, naming the tensor")
    func lyingBitmask() throws {
        var entries = SparseBitmask.compress(module: "layer", tensor: Tensor(shape: [2, 3], scalars: [1, 0, 2, 0, 0, 3]))
        let index = entries.firstIndex { $0.name == "layer.row_offsets" }!
        var offsets = Data()
        for value: Int64 in [0, 1] { withUnsafeBytes(of: value.littleEndian) { offsets.append(contentsOf: $0) } }
        entries[index] = SafeTensorsWriter.Entry(name: "layer.row_offsets", dtype: .i64, shape: [2], bytes: offsets)
        let file = try SafeTensorsFile(bytes: try SafeTensorsWriter.encode(entries: entries), path: "lying.safetensors")
        #expect(throws: CheckpointError.self) { _ = try SparseBitmask.denseStateDict(file) }
        do { _ = try SparseBitmask.denseStateDict(file) } catch {
            #expect("\(error)".contains("lying.safetensors") && "\(error)".contains("layer"))
        }
        // The honest group round-trips, odd widths included.
        let honest = try SafeTensorsFile(bytes: try SafeTensorsWriter.encode(entries: SparseBitmask.compress(
            module: "layer", tensor: Tensor(shape: [3, 11], scalars: (0..<33).map { $0 % 3 == 0 ? 0 : Float($0) }))), path: "ok")
        #expect(try SparseBitmask.denseStateDict(honest)["layer.weight"]?.scalars == (0..<33).map { $0 % 3 == 0 ? 0 : Float($0) })
    }

    @Test("removing the pruned FFN neurons gives the masked model's outputs with a smaller intermediate_size")
    func structuredFFNRemoval() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let classifier = try PruningTestSupport.linearHeavyClassifier()
        let layers = PrunableLayer.select(classifier.network, .ffn)
        let plan = try PruningTestSupport.plan("magnitude", registry: registry, options: ["structure": "ffn"])
        let masks = try Masker(plan: plan, layers: layers, stats: [:]).masks(for: classifier.network, sparsity: 0.5)
        masks.enforce(on: classifier.network.store)
        let sequences = PruningTestSupport.sequences(16)
        let masked = try PruningTestSupport.logits(classifier, sequences)
        let smaller = try PruningStage.makePermanent(classifier, masks: masks, layers: layers, structure: .ffn, logger: .init(label: "test"))
        #expect(smaller.config.intermediateSize == 128)
        #expect(smaller.network.store.view(named: classifier.network.names.layers[0].ffnIn + ".weight")?.shape == [128, 64])
        #expect(smaller.config.raw["quantization_config"] == nil)
        let removed = try PruningTestSupport.logits(smaller, sequences)
        #expect(zip(masked, removed).map { abs($0 - $1) }.max() ?? 0 < 1e-6)
        // Saved and reloaded, it is still the smaller model.
        try smaller.save(to: folder)
        let reloaded = try Classifier.load(from: folder)
        #expect(reloaded.config.intermediateSize == 128)
        #expect(try PruningTestSupport.logits(reloaded, sequences) == removed)
    }
}
