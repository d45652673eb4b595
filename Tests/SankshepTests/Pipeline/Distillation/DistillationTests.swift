import Foundation
import Testing
@testable import Host

/// Tiny teacher and student on a hand-made vocabulary, dropout off, weights large enough that every
/// path carries a gradient well above float rounding.
private enum Tiny {
    static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (0..<19).map { "w\($0)" }
    static let sequences: [[Int]] = [[2, 5, 9, 17, 4, 3], [2, 11, 22, 3], [2, 7, 3], [2, 6, 8, 10, 3]]
    static let labels = [1, 0, 1, 0]
    static let rows = [0, 1, 2, 3]

    static func classifier(hidden: Int, layers: Int, heads: Int, head: ClassifierHead = .bertPooler, pooling: Pooling = .cls,
                           seed: UInt64) throws -> Classifier {
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: true, stripAccents: nil)
        let config = ModelConfig(modelType: .bert, vocabSize: vocabulary.count, hiddenSize: hidden, numLayers: layers, numHeads: heads,
                                 intermediateSize: 2 * hidden, maxPositionEmbeddings: 9, padTokenId: 0, numLabels: 1)
        var shape = EncoderShape(config)
        shape.hiddenDropout = 0; shape.attentionDropout = 0; shape.classifierDropout = 0
        let network = SequenceClassifier(shape: shape, head: head, numLabels: 1, pooling: pooling)
        initializeParameters(network.store, names: network.names, head: network.head, seed: seed, initializerRange: 0.4)
        return Classifier(network: network, config: config, tokenizer: tokenizer, tokenizerFiles: [])
    }

    static func settings(seed: Int = 5) -> TrainingSettings {
        TrainingSettings(batchSize: 4, learningRate: 1e-3, epochs: 1, warmupRatio: 0, weightDecay: 0, gradientClipNorm: 0,
                         earlyStoppingPatience: 5, scheduler: .linear, loss: .bce, focalAlpha: 0.25, focalGamma: 2,
                         useClassWeights: true, freezeBase: false, seed: seed)
    }
}

@Suite("Knowledge distillation")
struct DistillationTests {
    struct Combination: CustomTestStringConvertible, Sendable {
        let name: String
        let loss: DistillationLossSettings
        let pooled: Bool
        var testDescription: String { name }
    }

    static let combinations: [Combination] = [
        Combination(name: "logit, binary KL", loss: DistillationLossSettings(alpha: 0.7, temperature: 4), pooled: false),
        Combination(name: "logit, MSE on logits", loss: DistillationLossSettings(alpha: 0.6, temperature: 2, softLoss: .logitMSE), pooled: false),
        Combination(name: "hidden, token states", loss: DistillationLossSettings(alpha: 0.7, temperature: 3, hiddenWeight: 0.5), pooled: false),
        Combination(name: "hidden, pooled vectors", loss: DistillationLossSettings(alpha: 0.5, temperature: 2, hiddenWeight: 0.8), pooled: true),
        Combination(name: "attention", loss: DistillationLossSettings(alpha: 0.7, temperature: 4, attentionWeight: 2), pooled: false),
        Combination(name: "multi-level", loss: DistillationLossSettings(alpha: 0.4, temperature: 2, hiddenWeight: 0.3, attentionWeight: 1.5), pooled: false),
    ]

    @Test("every loss combination's gradient agrees with finite differences, for the student and the projection", arguments: combinations)
    func gradientsMatchFiniteDifferences(_ combination: Combination) throws {
        let teacher = try Tiny.classifier(hidden: 8, layers: 4, heads: 4, seed: 1)
        let student = try Tiny.classifier(hidden: 6, layers: 2, heads: 2, seed: 2).network
        let mapping = LayerMapping.uniform(studentLayers: 2, teacherLayers: 4)
        let outputs = TeacherOutputs(hiddenStates: combination.loss.hiddenWeight > 0 ? mapping.hiddenStates.map(\.teacher) : [],
                                     pooledHiddenStates: combination.pooled,
                                     attentionLayers: combination.loss.attentionWeight > 0 ? mapping.attentionLayers.map(\.teacher) : [])
        let cache = try TeacherCache(teacher: teacher, sequences: Tiny.sequences, rows: Tiny.rows, outputs: outputs)
        let projection = combination.loss.hiddenWeight > 0
            ? HiddenProjection(count: 2, studentWidth: 6, teacherWidth: 8, learningRate: 1e-3, weightDecay: 0, seed: 3) : nil
        let hard = Trainer(settings: Tiny.settings()).defaultObjective(labels: Tiny.labels, train: Tiny.rows)
        let objective = DistillationObjective(settings: combination.loss, student: student, cache: cache, mapping: mapping,
                                              hard: hard, studentSequences: Tiny.sequences, projection: projection)
        let padded = Batching.pad(Tiny.sequences, batch: Batch(indices: Tiny.rows, paddedLength: 6), padID: 0)
        func loss() throws -> LossResult {
            let logits = try student.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                             batch: 4, length: 6, training: true)
            return objective.loss(logits: logits, rows: Tiny.rows)
        }

        student.store.zeroGradients()
        let analytic = try loss()
        #expect(analytic.loss.isFinite && analytic.loss > 0)
        #expect(analytic.hiddenStateGradients.isEmpty == (combination.loss.hiddenWeight == 0))
        #expect(analytic.attentionProbabilityGradients.isEmpty == (combination.loss.attentionWeight == 0))
        student.backward(dLogits: analytic.gradient, hiddenStateGradients: analytic.hiddenStateGradients,
                         attentionProbabilityGradients: analytic.attentionProbabilityGradients)
        let projectionGradients = projection.map { Array(UnsafeBufferPointer(start: $0.store.gradients, count: $0.store.count)) }

        var generator = SeededGenerator(seed: 99)
        let epsilon: Float = 2e-3
        var stores: [(String, ParameterStore, [Float])] = [("student", student.store,
                                                           Array(UnsafeBufferPointer(start: student.store.gradients, count: student.store.count)))]
        if let projection, let projectionGradients { stores.append(("projection", projection.store, projectionGradients)) }
        var largest = 0.0
        for (owner, store, gradients) in stores {
            for view in store.views {
                var direction = (0..<view.count).map { _ in Float.random(in: -1...1, using: &generator) }
                if view.name.hasSuffix("word_embeddings.weight") {
                    // Only the rows the batch reads have a gradient.
                    let used = Set(Tiny.sequences.joined())
                    for row in 0..<view.shape[0] where !used.contains(row) { for c in 0..<view.shape[1] { direction[row * view.shape[1] + c] = 0 } }
                }
                let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
                direction = direction.map { $0 / norm }
                let values = store.values + view.offset, saved = Array(UnsafeBufferPointer(start: values, count: view.count))
                for i in 0..<view.count { values[i] = saved[i] + epsilon * direction[i] }
                let plus = Double(try loss().loss)
                for i in 0..<view.count { values[i] = saved[i] - epsilon * direction[i] }
                let minus = Double(try loss().loss)
                for i in 0..<view.count { values[i] = saved[i] }
                let numeric = (plus - minus) / Double(2 * epsilon)
                let exact = (0..<view.count).reduce(0.0) { $0 + Double(gradients[view.offset + $1]) * Double(direction[$1]) }
                largest = max(largest, abs(numeric))
                #expect(abs(exact - numeric) <= 1e-3 + 3e-2 * abs(numeric), "\(owner) \(view.name): analytic \(exact), numeric \(numeric)")
            }
        }
        #expect(largest > 1e-2, "the check must exercise gradients above rounding noise")
    }

    @Test("the soft and hard parts mix as α·T²·KL + (1−α)·BCE, hand-computed")
    func logitLossByHand() throws {
        let teacher = try Tiny.classifier(hidden: 8, layers: 1, heads: 2, seed: 1)
        let student = try Tiny.classifier(hidden: 6, layers: 1, heads: 2, seed: 2).network
        let cache = try TeacherCache(teacher: teacher, sequences: Tiny.sequences, rows: [0, 1], outputs: TeacherOutputs())
        let objective = DistillationObjective(settings: DistillationLossSettings(alpha: 0.25, temperature: 2), student: student, cache: cache,
                                              mapping: .uniform(studentLayers: 1, teacherLayers: 1),
                                              hard: { logits, rows in Losses.binaryCrossEntropyWithLogits(logits: logits, labels: rows.map { Float(Tiny.labels[$0]) }) },
                                              studentSequences: Tiny.sequences, projection: nil)
        let logits: [Float] = [0.8, -1.5]
        let result = objective.loss(logits: logits, rows: [0, 1])
        func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
        var kl = 0.0, bce = 0.0
        for (i, row) in [0, 1].enumerated() {
            let p = sigmoid(Double(cache[row].logit) / 2), q = sigmoid(Double(logits[i]) / 2)
            kl += p * log(p / q) + (1 - p) * log((1 - p) / (1 - q))
            let y = Double(Tiny.labels[row]), s = sigmoid(Double(logits[i]))
            bce += -(y * log(s) + (1 - y) * log(1 - s))
        }
        let expected = 0.25 * 4 * kl / 2 + 0.75 * bce / 2
        #expect(abs(Double(result.loss) - expected) < 1e-5)
        let dExpected = [0, 1].enumerated().map { i, row in
            0.25 * 4 * (sigmoid(Double(logits[i]) / 2) - sigmoid(Double(cache[row].logit) / 2)) / (2 * 2)
                + 0.75 * (sigmoid(Double(logits[i])) - Double(Tiny.labels[row])) / 2
        }
        #expect(zip(result.gradient, dExpected).allSatisfy { abs(Double($0) - $1) < 1e-6 })
    }

    @Test("student layer i maps to teacher layer round(i·Lt/Ls)")
    func uniformMapping() {
        let mapping = LayerMapping.uniform(studentLayers: 3, teacherLayers: 12)
        #expect(mapping.hiddenStates.map(\.teacher) == [4, 8, 12])
        #expect(mapping.attentionLayers.map(\.teacher) == [3, 7, 11])
        #expect(LayerMapping.uniform(studentLayers: 2, teacherLayers: 2).hiddenStates.map(\.teacher) == [1, 2])
        #expect(LayerMapping.uniform(studentLayers: 4, teacherLayers: 2).hiddenStates.map(\.teacher) == [1, 1, 2, 2])
    }

    @Test("a student initialised from teacher layers 1 and 3 carries exactly their weights, the embeddings and the head")
    func studentFromTeacherLayers() throws {
        let teacher = try Tiny.classifier(hidden: 8, layers: 4, heads: 2, seed: 4)
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [1, 3])
        #expect(student.config.numLayers == 2)
        #expect(student.parameterCount < teacher.parameterCount)
        let t = teacher.network, s = student.network
        for (i, source) in [1, 3].enumerated() {
            let a = s.names.layers[i], b = t.names.layers[source]
            for (x, y) in [(a.query, b.query), (a.value, b.value), (a.ffnIn, b.ffnIn), (a.outputNorm, b.outputNorm)] {
                #expect(s.store.tensor(x + ".weight") == t.store.tensor(y + ".weight"), "\(x) ≠ \(y)")
                #expect(s.store.tensor(x + ".bias") == t.store.tensor(y + ".bias"))
            }
        }
        for name in [t.names.wordEmbeddings, t.names.positionEmbeddings, t.names.headHidden + ".weight", t.names.headOutput + ".bias"] {
            #expect(s.store.tensor(name) == t.store.tensor(name), "\(name)")
        }
        #expect(StudentFactory.sameTokenizer(student.tokenizer, teacher.tokenizer))
        #expect(throws: DistillationError.self) { try StudentFactory.fromTeacherLayers(teacher, layers: [0, 4]) }
        do {
            _ = try StudentFactory.fromTeacherLayers(teacher, layers: [0, 4])
        } catch {
            #expect("\(error)" == "--student_layers 0,4: the teacher has layers 0…3")
        }
    }

    @Test("attention distillation between different tokenizers is refused in one line before any teacher forward")
    func attentionNeedsOneTokenizer() throws {
        let teacher = try Classifier.fromPreset(.studentSmall, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0, pooling: .cls, seed: 1)
        let student = try Tiny.classifier(hidden: 6, layers: 1, heads: 2, seed: 2)
        for method in [KDMethod.attention, .multi_level] {
            let stage = DistillationStage(stage: DistillStage(method: method))
            do {
                _ = try stage.distill(teacher: teacher, student: student, corpus: TokenizedCorpus(texts: ["a"], maxLength: 8), labels: [1],
                                      train: [0], validation: [0], settings: Tiny.settings(), checkpoint: nil, resume: false)
                Issue.record("\(method) distillation across tokenizers was accepted")
            } catch let error as DistillationError {
                #expect(error.description.contains("attention distillation needs the teacher's tokenizer"))
                #expect(!error.description.contains("\n"))
            }
        }
    }
}

/// Distillation on a slice of the bundled data with the real presets' tokenizer.
@Suite("Knowledge distillation on the bundled data", .serialized)
struct DistillationDataTests {
    static func slice(fraction: Double, maxLength: Int = 64) throws -> (corpus: TokenizedCorpus, labels: [Int], train: [Int], validation: [Int]) {
        var options = CommentCSVOptions()
        options.dataFraction = fraction
        let dataset = try CommentDataset.load(contentsOf: Fixtures.bundledData, options: options)
        let (folds, _) = try Folds.kFold(texts: dataset.texts, labels: dataset.labels, k: 3, stratification: .binary, seed: 1)
        return (TokenizedCorpus(texts: dataset.texts, maxLength: maxLength), dataset.labels, folds[0].train, folds[0].validation)
    }

    static let tinyPreset = ModelPreset(name: "test-tiny-teacher", summary: "", hiddenSize: 16, layers: 2, heads: 2,
                                        intermediateSize: 32, maxPositions: 64, learningRate: 3e-3, epochs: 2, batchSize: 16)

    @Test("the teacher runs exactly once per training row over two epochs of multi-level distillation")
    func teacherRunsOncePerRow() throws {
        let data = try Self.slice(fraction: 0.02)
        let teacher = try Classifier.fromPreset(Self.tinyPreset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 1)
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [1])
        var settings = Tiny.settings()
        settings.epochs = 2
        settings.batchSize = 16
        let stage = DistillationStage(stage: DistillStage(method: .multi_level))
        let outcome = try stage.distill(teacher: teacher, student: student, corpus: data.corpus,
                                        labels: data.labels, train: data.train, validation: data.validation, settings: settings,
                                        checkpoint: nil, resume: false)
        #expect(outcome.training.history.count == 2)
        #expect(Set(outcome.cache.forwardsPerRow.keys) == Set(data.train))
        #expect(outcome.cache.forwardsPerRow.values.allSatisfy { $0 == 1 })
        #expect(!outcome.cache.outputs.pooledHiddenStates)
        #expect(outcome.cache.outputs.attentionLayers == [1])
    }

    @Test("hidden-state distillation into a student with its own tokenizer compares pooled vectors")
    func hiddenAcrossTokenizers() throws {
        let data = try Self.slice(fraction: 0.02, maxLength: 9)
        let teacher = try Classifier.fromPreset(Self.tinyPreset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: 1)
        // The student's vocabulary knows none of the Bangla words: a different tokenizer.
        let student = try Tiny.classifier(hidden: 6, layers: 1, heads: 2, seed: 2)
        let stage = DistillationStage(stage: DistillStage(method: .hidden))
        let outcome = try stage.distill(teacher: teacher, student: student, corpus: data.corpus,
                                        labels: data.labels, train: data.train, validation: data.validation, settings: Tiny.settings(),
                                        checkpoint: nil, resume: false)
        #expect(outcome.cache.outputs.pooledHiddenStates)
        #expect(outcome.cache[data.train[0]].hidden[0].count == 16)
        #expect(outcome.training.history.count == 1 && outcome.training.history[0].trainLoss.isFinite)
    }

    @Test("sankshep run --pipeline baseline_kd on a slice trains a student and summarises teacher and student side by side")
    func pipelineRuns() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let command = try RunCommand.parseAsRoot(["--pipeline", "baseline_kd", "--data_path", Fixtures.bundledData.path,
                                                  "--data_fraction", "0.03", "--num_folds", "2", "--epochs", "1",
                                                  "--output_dir", folder.path, "--threads", "1"]) as! RunCommand
        try command.run()
        let summary = try String(contentsOf: folder.appendingPathComponent("pipeline_summary_baseline_kd.csv"), encoding: .utf8)
        let lines = summary.split(separator: "\n")
        #expect(lines.count == 3)   // header, baseline, distill
        #expect(lines[2].hasPrefix("distill"))
        let student = try Classifier.load(from: folder.appendingPathComponent("final_student"))
        #expect(student.config.hiddenSize == ModelPreset.studentSmall.hiddenSize)
        #expect((0.3...0.6).contains(student.threshold))
    }
}

/// Distillation from a two-label teacher (Fixtures/heads/bert-2label: BertForSequenceClassification, 2 labels).
@Suite("Knowledge distillation from a two-label teacher")
struct TwoLabelTeacherTests {
    static func teacher() throws -> (Classifier, ClassifierHeadsTests.Reference) {
        (try Classifier.load(from: Fixtures.url("heads/bert-2label")), try ClassifierHeadsTests.Reference.read("bert-2label"))
    }

    static let labels = [1, 0, 1, 0, 1]

    @Test("a two-label teacher distils into a one-logit student: the cached logit is l1 - l0, whose sigmoid is transformers' softmax[1]")
    func distilsIntoOneLogit() throws {
        let (teacher, reference) = try Self.teacher()
        #expect(teacher.network.numLabels == 2)
        let config = ModelConfig(modelType: .bert, vocabSize: teacher.config.vocabSize, hiddenSize: 16, numLayers: 1, numHeads: 2,
                                 intermediateSize: 32, maxPositionEmbeddings: 32, numLabels: 1)
        let network = SequenceClassifier(shape: EncoderShape(config), head: .bertPooler, numLabels: 1)
        network.initializeRandomly(seed: 3)
        let student = Classifier(network: network, config: config, tokenizer: teacher.tokenizer, tokenizerFiles: [])
        let rows = Array(reference.sequences.indices)
        let outcome = try DistillationStage(stage: DistillStage(method: .logit))
            .distill(teacher: teacher, student: student, corpus: reference.corpus, labels: Self.labels,
                     train: rows, validation: rows, settings: Tiny.settings(), checkpoint: nil, resume: false)
        for row in rows {
            #expect(abs(Double(BinaryReadout.probability(outcome.cache[row].logit)) - reference.probabilities[row]) <= 1e-5)
        }
        #expect(outcome.student.network.numLabels == 1)
        #expect(outcome.training.history.count == 1 && outcome.training.history[0].trainLoss.isFinite)
    }

    @Test("a two-label student made of the teacher's layers trains on its binary logit and keeps both rows")
    func twoLabelStudentTrains() throws {
        let (teacher, reference) = try Self.teacher()
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [0])
        let before = student.network.store.tensor("classifier.weight").scalars
        let rows = Array(reference.sequences.indices)
        let outcome = try DistillationStage(stage: DistillStage(method: .logit))
            .distill(teacher: teacher, student: student, corpus: reference.corpus, labels: Self.labels,
                     train: rows, validation: rows, settings: Tiny.settings(), checkpoint: nil, resume: false)
        #expect(outcome.student.network.numLabels == 2)
        let after = outcome.student.network.store.tensor("classifier.weight").scalars
        // BCE on l1 - l0 moves the two rows by opposite amounts.
        let moved = zip(before, after).map { $1 - $0 }
        let half = moved.count / 2
        #expect(moved.contains { $0 != 0 })
        #expect(zip(moved[..<half], moved[half...]).allSatisfy { abs($0 + $1) <= 1e-6 + 1e-3 * abs($0) })
    }
}

@Suite("Knowledge distillation from a seed folder's teacher")
struct SeedTeacherTests {
    @Test("a student of the teacher's layers under a use_multi_layers head needs enough layers, else one line names the option")
    func multiLayerHeadNeedsLayers() throws {
        let teacher = try Classifier.load(from: Fixtures.url("heads/seed-pretrained-bert-multi"))
        #expect(throws: DistillationError.self) { try StudentFactory.fromTeacherLayers(teacher, layers: [0]) }
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [0, 2, 1])
        #expect(student.network.head == .seedMLP(hidden: 256, layers: 4))
    }

    @Test("a mean-pooling seed teacher distils into a student of its layers, which keeps its head and pooling")
    func meanPoolingTeacherDistils() throws {
        let teacher = try Classifier.load(from: Fixtures.url("heads/seed-pretrained-distilbert-mean"))
        let reference = try ClassifierHeadsTests.Reference.read("seed-pretrained-distilbert-mean")
        let student = try StudentFactory.fromTeacherLayers(teacher, layers: [0])
        let rows = Array(reference.sequences.indices)
        let outcome = try DistillationStage(stage: DistillStage(method: .hidden))
            .distill(teacher: teacher, student: student, corpus: reference.corpus,
                     labels: [1, 0, 1, 0, 1], train: rows, validation: rows, settings: Tiny.settings(),
                     checkpoint: nil, resume: false)
        #expect(outcome.student.network.effectivePooling == .mean)
        for row in rows {
            #expect(abs(Double(BinaryReadout.probability(outcome.cache[row].logit)) - reference.probabilities[row]) <= 1e-5)
        }
    }
}

extension ClassifierHeadsTests.Reference {
    /// The reference's own token ids, as Hugging Face made them, for teacher and student alike (they
    /// share one tokenizer in these tests).
    var corpus: TokenizedCorpus { TokenizedCorpus(texts: texts, maxLength: max_length, tokenize: { [sequences] _, _ in sequences }) }
}
