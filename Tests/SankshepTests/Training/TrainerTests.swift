import Foundation
import Testing
@testable import Host

/// A tiny model on a slice of the bundled data: enough to exercise the loop in a second.
private func tinyClassifier(seed: Int = 7) throws -> Classifier {
    let preset = ModelPreset(name: "test-tiny", summary: "BERT 1 × 16", hiddenSize: 16, layers: 1, heads: 2,
                             intermediateSize: 32, maxPositions: 64, learningRate: 3e-3, epochs: 3, batchSize: 16)
    return try Classifier.fromPreset(preset, tokenizerDirectory: Fixtures.bundledTokenizer, dropout: 0.1, pooling: .cls, seed: seed)
}

private func slice() throws -> (sequences: [[Int]], labels: [Int], train: [Int], validation: [Int]) {
    var options = CommentCSVOptions()
    options.dataFraction = 0.02
    let dataset = try CommentDataset.load(contentsOf: Fixtures.bundledData, options: options)
    let tokenizer = try BertTokenizer(directory: Fixtures.bundledTokenizer)
    let sequences = dataset.texts.map { tokenizer.encode($0, maxLength: 48) }
    let (folds, _) = try Folds.kFold(texts: dataset.texts, labels: dataset.labels, k: 3, stratification: .binary, seed: 1)
    return (sequences, dataset.labels, folds[0].train, folds[0].validation)
}

private let settings = TrainingSettings(batchSize: 16, learningRate: 3e-3, epochs: 3, warmupRatio: 0.1, weightDecay: 0.01,
                                        gradientClipNorm: 1.0, earlyStoppingPatience: 5, scheduler: .linear, loss: .bce,
                                        focalAlpha: 0.25, focalGamma: 2, useClassWeights: true, freezeBase: false, seed: 11)

private func weights(_ classifier: Classifier) -> [Float] {
    Array(UnsafeBufferPointer(start: classifier.network.store.values, count: classifier.network.store.count))
}

@Suite("The training loop")
struct TrainerTests {
    @Test("a run killed in the middle of an epoch resumes from its checkpoint to exactly the weights of an uninterrupted run")
    func resumeIsExact() throws {
        let data = try slice()
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let trainer = Trainer(settings: settings)

        let uninterrupted = try tinyClassifier()
        let expected = try trainer.train(uninterrupted, sequences: data.sequences, labels: data.labels, train: data.train,
                                         validation: data.validation, label: "uninterrupted", checkpoint: nil, resume: false)

        let checkpoint = folder.appendingPathComponent("run.checkpoint.safetensors")
        let stepsPerEpoch = (data.train.count + 15) / 16
        let interrupted = try tinyClassifier()
        #expect(throws: TrainingInterrupted.self) {
            // Dies half-way through the second epoch, after the first epoch's checkpoint.
            try trainer.train(interrupted, sequences: data.sequences, labels: data.labels, train: data.train,
                              validation: data.validation, label: "interrupted", checkpoint: checkpoint, resume: false,
                              hooks: TrainingHooks(interruptAfterSteps: stepsPerEpoch + stepsPerEpoch / 2))
        }
        #expect(FileManager.default.fileExists(atPath: checkpoint.path))
        let resumedModel = try tinyClassifier()
        let resumed = try trainer.train(resumedModel, sequences: data.sequences, labels: data.labels, train: data.train,
                                        validation: data.validation, label: "resumed", checkpoint: checkpoint, resume: true)
        #expect(weights(resumedModel) == weights(uninterrupted))
        #expect(resumed.history == expected.history.map { record in
            var same = record
            same.seconds = resumed.history[record.epoch - 1].seconds
            same.tokensPerSecond = resumed.history[record.epoch - 1].tokensPerSecond
            return same
        })
        #expect(resumed.bestProbabilities == expected.bestProbabilities)
    }

    @Test("the same seed trains to the same weights, and the model learns on the bundled data")
    func deterministicAndLearning() throws {
        let data = try slice()
        let trainer = Trainer(settings: settings)
        let first = try tinyClassifier(), second = try tinyClassifier()
        let a = try trainer.train(first, sequences: data.sequences, labels: data.labels, train: data.train,
                                  validation: data.validation, label: "a", checkpoint: nil, resume: false)
        _ = try trainer.train(second, sequences: data.sequences, labels: data.labels, train: data.train,
                              validation: data.validation, label: "b", checkpoint: nil, resume: false)
        #expect(weights(first) == weights(second))
        #expect(a.history.last!.trainLoss < a.history.first!.trainLoss)
    }

    @Test("pruned weights held at zero by a hook stay exactly zero through every optimizer step")
    func afterStepHookKeepsMask() throws {
        let data = try slice()
        let classifier = try tinyClassifier()
        let store = classifier.network.store
        let view = store.view(named: "bert.encoder.layer.0.intermediate.dense.weight")!
        let pruned = Array(stride(from: view.offset, to: view.offset + view.count, by: 2))
        var hooks = TrainingHooks()
        hooks.afterStep = { for index in pruned { store.values[index] = 0 } }
        try hooks.afterStep?()
        _ = try Trainer(settings: settings).train(classifier, sequences: data.sequences, labels: data.labels, train: data.train,
                                                  validation: data.validation, label: "masked", checkpoint: nil, resume: false, hooks: hooks)
        #expect(pruned.allSatisfy { store.values[$0] == 0 })
    }

    @Test("frozen encoder weights do not move; the head does")
    func freezeBase() throws {
        let data = try slice()
        let classifier = try tinyClassifier()
        var frozen = settings
        frozen.freezeBase = true
        frozen.epochs = 1
        let store = classifier.network.store
        let word = store.tensor("bert.embeddings.word_embeddings.weight")
        let head = store.tensor("classifier.weight")
        _ = try Trainer(settings: frozen).train(classifier, sequences: data.sequences, labels: data.labels, train: data.train,
                                                validation: data.validation, label: "frozen", checkpoint: nil, resume: false)
        #expect(store.tensor("bert.embeddings.word_embeddings.weight") == word)
        #expect(store.tensor("classifier.weight") != head)
    }
}
