import Foundation

/// Stage 4: the previous stage's float model with its weights quantized by a plugin method
/// (`dynamic`, `static`, `int4`, `fp16`, or any quantizer a plugin registers); see QuantizedClassifier.
///
/// Methods that ask for calibration statistics (static INT8's activation ranges) get them from
/// `calibration_batches` batches of the best fold's TRAINING rows (shuffled under the run's seed), run
/// through the float model with the embeddings already quantized; the held-out rows every stage is
/// evaluated on are never seen.
struct QuantizationStage: CompressionStage {
    let stage: QuantizeStage

    func run(_ input: StageInput) throws -> DeployableModel {
        guard let classifier = input.model as? Classifier else {
            throw PluginError("stage \(input.label): quantization needs a float model, and the previous stage gave '\(input.model.summary)'")
        }
        let method = try input.registry.quantizer(named: stage.method)
        let options = Dictionary(input.method?.orderedOptions.map { ($0.name, $0.value) } ?? stage.options.map { ($0.key, $0.value) },
                                 uniquingKeysWith: { $1 })
        var calibration: (sequences: [[Int]], rows: [Int], batchSize: Int)?
        if method.neededStatistics != 0 {
            let rows = Self.calibrationRows(folds: input.context.folds, bestFold: input.baseline.bestFold,
                                            count: stage.calibrationBatches * input.settings.batchSize, seed: input.settings.seed)
            input.context.logger.info("\(input.label): calibrating \(method.name) on \(rows.count) training rows (\(stage.calibrationBatches) batches of \(input.settings.batchSize))")
            calibration = (try input.context.corpus.sequences(for: classifier), rows, input.settings.batchSize)
        }
        let model = try QuantizedClassifier.quantize(classifier, method: method, options: options, registry: input.registry,
                                                     calibration: calibration, seed: UInt64(truncatingIfNeeded: input.settings.seed),
                                                     logger: input.context.logger)
        let floatBytes = classifier.parameterCount * 4
        input.context.logger.info("\(input.label): \(model.weights.count) layers quantized with \(method.name) (\(method.method.pluginName)); quantized layers \(model.quantizedBytes) bytes, float model \(floatBytes) bytes")
        // A plugin failure in a forward falls back to the float product for that call; surface it.
        _ = try model.probabilities(sequences: input.context.corpus.sequences(for: model), rows: Array(input.baseline.heldOut.prefix(8)), batchSize: 8)
        if let failure = model.hook.failure { throw failure }
        return model
    }

    /// `count` of the best fold's training rows, shuffled under `seed`. `bestFold` counts from 1, as
    /// the fold summary does; its validation rows are the held-out ones, never calibrated on.
    static func calibrationRows(folds: [FoldSplit], bestFold: Int, count: Int, seed: Int) -> [Int] {
        // The shuffle is SplitMix64's own (the standard library's may change between toolchains).
        var random = SplitMix64(seed: UInt64(truncatingIfNeeded: seed), stream: .calibration)
        return Array(random.shuffled(folds[bestFold - 1].train).prefix(count))
    }
}
