import Foundation
import Kernels
import Logging

/// How one model is trained: the seed framework's options, resolved against the model's preset.
struct TrainingSettings: Sendable {
    var batchSize: Int
    var learningRate: Double
    var epochs: Int
    var warmupRatio: Double
    var weightDecay: Double
    /// 0 turns clipping off.
    var gradientClipNorm: Double
    var earlyStoppingPatience: Int
    var scheduler: LearningRateSchedule.Kind
    var loss: LossType
    var focalAlpha: Double
    var focalGamma: Double
    /// Weight the positive class by negatives / positives of the training split (`--use_class_weights`).
    var useClassWeights: Bool
    var freezeBase: Bool
    var seed: Int
}

/// One epoch of one training run, as the fold summary, MLflow and the report show it.
struct EpochRecord: Codable, Sendable, Equatable {
    var epoch: Int
    var trainLoss: Double
    /// Best macro-F1 of the seed's threshold sweep on the validation rows.
    var validationMacroF1: Double
    var validationRocAUC: Double?
    var validationThreshold: Double
    var seconds: Double
    var tokensPerSecond: Double
}

/// What a training run leaves: the model holds the weights of its best epoch.
struct TrainingResult: Sendable {
    var history: [EpochRecord]
    var bestEpoch: Int
    /// Validation probabilities of the best epoch, in the order of the validation indices.
    var bestProbabilities: [Float]
    var stoppedEarly: Bool
}

/// The training objective: loss and dLoss/dLogits for a batch (the rows are dataset indices).
/// The default is BCE or focal loss on the labels; distillation passes its own.
typealias TrainingObjective = (_ logits: [Float], _ rows: [Int]) -> LossResult

/// Points a training run can be extended at without changing the loop (pruning masks, schedules).
struct TrainingHooks {
    /// Before the optimizer step `globalStep` (1-based) — e.g. a pruning schedule updating its masks.
    var beforeStep: ((_ globalStep: Int, _ epoch: Int) throws -> Void)?
    /// After every optimizer step — e.g. pruned weights set back to exactly zero.
    var afterStep: (() -> Void)?
    /// Stops the run with `TrainingInterrupted` after this many optimizer steps in this process
    /// (used to test that an interrupted run resumes to the same weights).
    var interruptAfterSteps: Int?
}

struct TrainingInterrupted: Error, CustomStringConvertible {
    let step: Int
    var description: String { "training interrupted after step \(step)" }
}

/// The training loop: length-bucketed batches, AdamW with warm-up, clipping, early stopping on
/// validation macro-F1, and a checkpoint after every epoch from which an interrupted run resumes
/// to exactly the weights an uninterrupted run would have reached.
///
/// Resuming is exact because nothing random depends on process history: the batches of an epoch come
/// from (seed, epoch), the dropout masks from (seed, step), and the checkpoint stores the weights, the
/// optimizer moments, the step counters and the early-stopping state.
struct Trainer {
    let settings: TrainingSettings
    var logger = Logger(label: "sankshep.train")
    /// Set under `--distributed` when the ranks train this model together (Distributed/DataParallel.swift).
    var dataParallel: DataParallel? = nil

    /// Trains `classifier` on `train` rows and returns with the weights of its best validation epoch.
    ///
    /// - Parameters:
    ///   - sequences: token ids of every row of the dataset ([CLS] … [SEP]).
    ///   - checkpoint: where the per-epoch checkpoint lives; with `resume`, training continues from it.
    func train(_ classifier: Classifier, sequences: [[Int]], labels: [Int], train: [Int], validation: [Int],
               label: String, checkpoint: URL?, resume: Bool, objective: TrainingObjective? = nil,
               hooks: TrainingHooks = TrainingHooks(), onEpoch: ((EpochRecord) throws -> Void)? = nil) throws -> TrainingResult {
        let network = classifier.network
        let store = network.store
        network.frozenEncoder = settings.freezeBase
        let optimizer = AdamW(store: store, learningRate: settings.learningRate, weightDecay: settings.weightDecay,
                              decayRule: .excludingBiasAndLayerNorm)
        let trainLengths = train.map { sequences[$0].count }
        let stepsPerEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let totalSteps = stepsPerEpoch * settings.epochs
        let schedule = try LearningRateSchedule(kind: settings.scheduler, warmupRatio: settings.warmupRatio, totalSteps: max(totalSteps, 1))
        let objective = objective ?? defaultObjective(labels: labels, train: train)
        let withoutGradient = parametersWithoutGradient(network)

        var state = LoopState(nextEpoch: 1, globalStep: 0, bestMacroF1: -1, bestEpoch: 0, epochsWithoutImprovement: 0, history: [])
        var bestValues = [Float](UnsafeBufferPointer(start: store.values, count: store.count))
        var bestProbabilities: [Float] = []
        if resume, let checkpoint, let restored = try readCheckpoint(checkpoint, network: network, optimizer: optimizer) {
            state = restored.state
            bestValues = restored.bestValues
            bestProbabilities = restored.bestProbabilities
            logger.info("\(label): resuming after epoch \(state.nextEpoch - 1) from \(checkpoint.path)")
        }

        // Data-parallel ranks train one model together: rank 0 alone reports its progress.
        let quiet = dataParallel.map { !$0.communicator.isRoot } ?? false
        let write: (String) -> Void = quiet ? { _ in } : { ProgressReporter.writeToStandardError($0) }
        let progress = ProgressReporter(label: label, epochs: settings.epochs, stepsPerEpoch: stepsPerEpoch, write: write)
        let buckets = dataParallel?.buckets(for: network)
        defer { dataParallel?.release(network) }
        var stepsThisProcess = 0
        var stoppedEarly = false
        epochs: while state.nextEpoch <= settings.epochs {
            if state.epochsWithoutImprovement >= settings.earlyStoppingPatience {
                stoppedEarly = true
                break epochs
            }
            let epoch = state.nextEpoch
            let started = Date()
            progress.startEpoch(epoch)
            let batches = Batching.trainingBatches(lengths: trainLengths, batchSize: settings.batchSize,
                                                   seed: UInt64(settings.seed), epoch: epoch)
            var lossSum = 0.0
            var tokens = 0
            for batch in batches {
                // Data-parallel: this rank's shard of the batch (the whole batch in one process).
                let shard = dataParallel?.shard(of: batch.indices.count) ?? 0..<batch.indices.count
                let rows = batch.indices[shard].map { train[$0] }
                store.zeroGradients()
                buckets?.begin(scale: Float(rows.count) / Float(batch.indices.count))
                var stepLoss: Float = 0
                var batchTokens = 0
                if rows.isEmpty {
                    network.dropoutStep += 1   // as the forward would have: every rank counts the same steps
                } else {
                    let padded = Batching.pad(sequences, batch: Batch(indices: rows, paddedLength: batch.paddedLength), padID: classifier.tokenizer.padId)
                    let logits = try network.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                                     batch: padded.batchSize, length: padded.sequenceLength, training: true)
                    // Every objective is written on the binary logit; a two-label head gets its gradient back on both rows.
                    let loss = objective(BinaryReadout.binaryLogits(logits, labels: network.numLabels), rows)
                    network.backward(dLogits: BinaryReadout.logitGradients(loss.gradient, labels: network.numLabels),
                                     hiddenStateGradients: loss.hiddenStateGradients,
                                     attentionProbabilityGradients: loss.attentionProbabilityGradients)
                    stepLoss = loss.loss
                    batchTokens = padded.lengths.reduce(0, +)
                }
                if let dataParallel, let buckets {
                    // The summed gradient is the whole batch's; so are the loss and the token count.
                    try buckets.finish()
                    (stepLoss, batchTokens) = try dataParallel.batchTotals(shardLoss: stepLoss, shardRows: rows.count,
                                                                           batchRows: batch.indices.count, tokens: batchTokens)
                }
                state.globalStep += 1
                try hooks.beforeStep?(state.globalStep, epoch)
                if settings.gradientClipNorm > 0 {
                    _ = GradientClipping.clipGlobalNorm(store, maxNorm: Float(settings.gradientClipNorm), withoutGradient: withoutGradient)
                }
                optimizer.learningRate = schedule.learningRate(base: settings.learningRate, atStep: state.globalStep - 1)
                optimizer.step(withoutGradient: withoutGradient)
                hooks.afterStep?()
                lossSum += Double(stepLoss)
                tokens += batchTokens
                progress.step(loss: Double(stepLoss), tokens: batchTokens)
                stepsThisProcess += 1
                if let limit = hooks.interruptAfterSteps, stepsThisProcess >= limit {
                    throw TrainingInterrupted(step: state.globalStep)
                }
            }
            progress.endEpoch()

            let probabilities = try Evaluator.probabilities(network: network, sequences: sequences, rows: validation,
                                                        padID: classifier.tokenizer.padId, batchSize: max(settings.batchSize, 64))
            let search = ThresholdSearch.search(probabilities: probabilities, labels: validation.map { labels[$0] })
            let seconds = Date().timeIntervalSince(started)
            let record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(max(batches.count, 1)),
                                     validationMacroF1: search.bestOfSweep.macroF1, validationRocAUC: search.bestOfSweep.rocAUC,
                                     validationThreshold: search.bestOfSweep.threshold, seconds: seconds,
                                     tokensPerSecond: Double(tokens) / max(seconds, 1e-9))
            state.history.append(record)
            if record.validationMacroF1 > state.bestMacroF1 {
                state.bestMacroF1 = record.validationMacroF1
                state.bestEpoch = epoch
                state.epochsWithoutImprovement = 0
                bestValues = [Float](UnsafeBufferPointer(start: store.values, count: store.count))
                bestProbabilities = probabilities
            } else {
                state.epochsWithoutImprovement += 1
            }
            progress.note(String(format: "%@ epoch %d: train loss %.4f, validation macro-F1 %.4f (threshold %.2f), ROC-AUC %@",
                                 label, epoch, record.trainLoss, record.validationMacroF1, record.validationThreshold,
                                 record.validationRocAUC.map { String(format: "%.4f", $0) } ?? "n/a"))
            state.nextEpoch = epoch + 1
            if let checkpoint, dataParallel?.communicator.isRoot ?? true {
                try TrainingCheckpoint.write(to: checkpoint, network: network, optimizer: optimizer, state: state,
                                             bestValues: bestValues, bestProbabilities: bestProbabilities)
            }
            try onEpoch?(record)
        }
        if state.epochsWithoutImprovement >= settings.earlyStoppingPatience && state.nextEpoch <= settings.epochs { stoppedEarly = true }
        bestValues.withUnsafeBufferPointer { store.values.update(from: $0.baseAddress!, count: store.count) }
        return TrainingResult(history: state.history, bestEpoch: state.bestEpoch, bestProbabilities: bestProbabilities,
                              stoppedEarly: stoppedEarly)
    }

    /// The checkpoint to resume from, nil when there is none. Data-parallel: rank 0 alone reads it (and
    /// writes it, after every epoch) and the other ranks get its bytes, so no rank needs rank 0's disk.
    private func readCheckpoint(_ checkpoint: URL, network: SequenceClassifier, optimizer: AdamW) throws
        -> (state: LoopState, bestValues: [Float], bestProbabilities: [Float])? {
        if let dataParallel {
            guard let bytes = try dataParallel.sharedFile(checkpoint) else { return nil }
            return try TrainingCheckpoint.read(bytes: bytes, path: checkpoint.path, into: network, optimizer: optimizer)
        }
        guard FileManager.default.fileExists(atPath: checkpoint.path) else { return nil }
        return try TrainingCheckpoint.read(checkpoint, into: network, optimizer: optimizer)
    }

    /// BCE (with the training split's class weight when asked) or focal loss on the labels.
    func defaultObjective(labels: [Int], train: [Int]) -> TrainingObjective {
        let positives = train.reduce(0) { $0 + labels[$1] }
        let negatives = train.count - positives
        let positiveWeight: Float = settings.useClassWeights && positives > 0 ? Float(negatives) / Float(positives) : 1
        let settings = self.settings
        return { logits, rows in
            let targets = rows.map { Float(labels[$0]) }
            switch settings.loss {
            case .bce: return Losses.binaryCrossEntropyWithLogits(logits: logits, labels: targets, positiveWeights: [positiveWeight])
            case .focal: return Losses.focal(logits: logits, labels: targets, alpha: Float(settings.focalAlpha), gamma: Float(settings.focalGamma))
            }
        }
    }

    /// BERT's pooler takes no part under the seed head; PyTorch leaves such parameters untouched.
    private func parametersWithoutGradient(_ network: SequenceClassifier) -> Set<String> {
        guard case .seedMLP = network.head else { return [] }
        return Set(network.store.views.map(\.name).filter { $0.contains(".pooler.") })
    }
}

/// The loop's own state, saved with every checkpoint.
struct LoopState: Codable, Sendable {
    var nextEpoch: Int
    var globalStep: Int
    var bestMacroF1: Double
    var bestEpoch: Int
    var epochsWithoutImprovement: Int
    var history: [EpochRecord]
}

/// Inference over rows of the dataset, batched by length so little time goes to padding.
enum Evaluator {
    /// Probabilities of hate speech (`BinaryReadout`), in the order of `rows`. Throws (naming the
    /// row's token and position) when `sequences` hold an id or a length the network cannot read.
    static func probabilities(network: SequenceClassifier, sequences: [[Int]], rows: [Int], padID: Int, batchSize: Int) throws -> [Float] {
        let lengths = rows.map { sequences[$0].count }
        let batches = Batching.evaluationBatches(lengths: lengths, batchSize: batchSize)
        // Only the logits are read here, so the last layer may skip every row but [CLS].
        let headRowsOnly = network.headRowsOnlyInInference
        network.headRowsOnlyInInference = true
        defer { network.headRowsOnlyInInference = headRowsOnly }
        var results: [[Float]] = []
        results.reserveCapacity(batches.count)
        for batch in batches {
            let dataRows = batch.indices.map { rows[$0] }
            let padded = Batching.pad(sequences, batch: Batch(indices: dataRows, paddedLength: batch.paddedLength), padID: padID)
            let logits = try network.forward(inputIds: padded.inputIDs.map(Int32.init), attentionMask: padded.attentionMask.map(Int32.init),
                                              batch: padded.batchSize, length: padded.sequenceLength, training: false)
            results.append(BinaryReadout.probabilities(logits, labels: network.numLabels))
        }
        return Batching.restoreOrder(results, batches: batches, count: rows.count)
    }
}
