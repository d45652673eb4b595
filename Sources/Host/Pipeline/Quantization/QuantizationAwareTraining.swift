import Foundation
import Logging

/// Stage 4 with `--quant_method qat`: quantization-aware training for a quantizer that offers the
/// "sankshep.qat/1" extension (the built-in `static` and `int4`, or a plugin's), then conversion to
/// that quantizer's layers — the same kind of model, and folder, its post-training path makes.
///
///   1. The tables (embeddings, the head's hidden weight) are quantized first, exactly as the
///      post-training path does, and held at those values while training (they are stored quantized
///      but looked up in float, so what is trained is what is saved).
///   2. The encoder's linear layers run fake-quantized (FakeQuantization.swift): weights through the
///      quantizer's `fake_quantize`, refreshed after every optimizer step; inputs on the scheme the
///      quantizer names. Per-tensor input ranges start at the largest |x| over the calibration rows
///      (the best fold's TRAINING rows, as static calibration uses) and follow the training batches
///      until the last epoch, which trains against frozen ranges.
///   3. Fine-tuning on the best fold's training rows, early stopping on the held-out rows as pruning's
///      healing does; the best epoch's weights and input ranges are kept.
///   4. Each linear layer becomes the quantizer's layer through the extension's `convert`.
struct QuantizationAwareTraining {
    let stage: QuantizeStage

    func run(_ input: StageInput) throws -> DeployableModel {
        guard let classifier = input.model as? Classifier else {
            throw PluginError("stage \(input.label): quantization-aware training needs a float model, and the previous stage gave '\(input.model.summary)'")
        }
        let quantizer = try input.registry.quantizer(named: stage.quantizerMethod)
        let options = Dictionary(input.method?.orderedOptions.map { ($0.name, $0.value) } ?? stage.options.map { ($0.key, $0.value) },
                                 uniquingKeysWith: { $1 })
        let context = input.context
        var settings = input.settings
        settings.epochs = stage.epochs ?? QuantizeStage.defaultQATEpochs
        settings.learningRate = stage.learningRate ?? settings.learningRate
        let calibration = QuantizationStage.calibrationRows(folds: context.folds, bestFold: input.baseline.bestFold,
                                                            count: stage.calibrationBatches * input.settings.batchSize, seed: input.settings.seed)
        let outcome = try Self.train(classifier, for: quantizer, options: options, registry: input.registry,
                                     sequences: context.corpus.sequences(for: classifier), labels: context.dataset.labels,
                                     train: context.folds[input.baseline.bestFold - 1].train, validation: input.baseline.heldOut,
                                     calibration: calibration, settings: settings, label: input.label, logger: context.logger)
        let model = outcome.model
        context.logger.info("\(input.label): \(model.weights.filter { $0.record.role == .linear }.count) linear layers converted to \(quantizer.name) (\(quantizer.method.pluginName)) after \(settings.epochs) epochs of quantization-aware training (best epoch \(outcome.training.bestEpoch)); converted vs fake-quantized model on \(outcome.checkedRows) held-out rows: largest probability difference \(outcome.largestDifference)")
        if let failure = model.hook.failure { throw failure }
        return model
    }

    struct Outcome {
        let model: QuantizedClassifier
        let training: TrainingResult
        /// Largest |p_converted − p_fake-quantized| over the first `checkedRows` validation rows.
        let largestDifference: Float
        let checkedRows: Int
    }

    /// Trains a copy of `classifier` (left as it was) for `quantizer` and converts it. Throws, before
    /// any training, when the quantizer has no "sankshep.qat/1" extension.
    static func train(_ classifier: Classifier, for quantizer: QuantizerMethod, options: [String: String], registry: PluginRegistry,
                      sequences: [[Int]], labels: [Int], train: [Int], validation: [Int], calibration: [Int],
                      settings: TrainingSettings, label: String, logger: Logger) throws -> Outcome {
        let scheme = try quantizer.qatInputScheme()
        let copy = try QuantizedClassifier.copy(classifier)
        let network = copy.network, store = network.store
        // 1. Tables, quantized as the post-training path does, and their values to hold.
        let (tableMethod, tableOptions) = QuantizedClassifier.tableQuantizer(for: quantizer, options: options, registry: registry)
        let tables = try EncoderQuantizer.quantize(network: network, method: quantizer, options: options, tableMethod: tableMethod,
                                                   tableOptions: tableOptions, calibration: nil, linear: false, log: { logger.notice("\($0)") })
        let heldTables = tables.flatMap(\.record.weights).compactMap { store.view(named: $0) }
            .map { ($0, Array(UnsafeBufferPointer(start: store.values + $0.offset, count: $0.count))) }
        func holdTables() {
            for (view, values) in heldTables { values.withUnsafeBufferPointer { (store.values + view.offset).update(from: $0.baseAddress!, count: view.count) } }
        }

        // 2. Fake quantization of every encoder linear layer, through the quantizer's extension.
        let fake = try fakeQuantization(network: network, quantizer: quantizer, scheme: scheme, options: options)
        network.fakeQuantization = fake
        defer { network.fakeQuantization = nil }
        try fake.refreshWeights(store)
        if case .perTensor = scheme {
            guard !calibration.isEmpty else {
                throw PluginError("quantizer '\(quantizer.name)': quantization-aware training needs calibration rows for its input ranges, and none were given")
            }
            fake.rangeMode = .calibrate
            _ = try Evaluator.probabilities(network: network, sequences: sequences, rows: calibration, padID: copy.tokenizer.padId,
                                            batchSize: settings.batchSize)
            fake.rangeMode = .observe
        }

        // 3. Fine-tuning; the ranges of every epoch are kept so the best epoch's go with its weights.
        var scalesAfterEpoch: [Int: [String: Float]] = [:]
        let hooks = TrainingHooks(beforeStep: { _, _ in fake.maskWeightGradients(store) },
                                  afterStep: { holdTables(); try fake.refreshWeights(store) })
        let result = try Trainer(settings: settings, logger: logger).train(
            copy, sequences: sequences, labels: labels, train: train, validation: validation, label: "\(label) qat",
            checkpoint: nil, resume: false, hooks: hooks, onEpoch: { record in
                scalesAfterEpoch[record.epoch] = fake.inputScales
                if settings.epochs > 1 && record.epoch == settings.epochs - 1 { fake.rangeMode = .frozen }
            })
        // The trainer left the best epoch's float weights in the store.
        try fake.refreshWeights(store)
        if let scales = scalesAfterEpoch[result.bestEpoch] { fake.setInputScales(scales) }
        let checked = Array(validation.prefix(32))
        let fakeProbabilities = try Evaluator.probabilities(network: network, sequences: sequences, rows: checked,
                                                            padID: copy.tokenizer.padId, batchSize: 32)

        // 4. Conversion, layer by layer, with the scales the weights were trained with.
        let scales = fake.inputScales
        network.fakeQuantization = nil
        var weights = tables
        for group in EncoderQuantizer.linearGroups(network.names) {
            let key = group.weights.map { String($0.dropLast(7)) }.joined(separator: "|")
            let (values, rows, cols) = EncoderQuantizer.stacked(group.weights, store: store)
            let layer = try values.withUnsafeBufferPointer { data in
                try quantizer.convert(weight: WeightView(data: data, rows: rows, cols: cols, layerName: group.name,
                                                         layerKind: EncoderQuantizer.layerKind(group.name, role: .linear)),
                                      inputScale: scales[key] ?? 0, options: options)
            }
            if layer.canDequantize { EncoderQuantizer.unstack(try layer.dequantize(), into: group.weights, store: store) }
            let record = EncoderQuantizer.record(name: group.name, role: .linear, weights: group.weights, method: quantizer,
                                                 options: options, rows: rows, cols: cols)
            weights.append(QuantizedWeight(record: record, layer: layer,
                                           bias: EncoderQuantizer.bias(of: group.weights, names: network.names, store: store)))
        }
        let model = QuantizedClassifier(float: copy, weights: weights, method: quantizer.name)
        let converted = try model.probabilities(sequences: sequences, rows: checked, batchSize: 32)
        let largest = zip(converted, fakeProbabilities).map { abs($0 - $1) }.max() ?? 0
        return Outcome(model: model, training: result, largestDifference: largest, checkedRows: checked.count)
    }

    /// The fake quantizer of each encoder linear layer (query/key/value fused, as the quantizer holds
    /// them), its weights made by `quantizer`'s "sankshep.qat/1" `fake_quantize`.
    static func fakeQuantization(network: SequenceClassifier, quantizer: QuantizerMethod, scheme: QATInputScheme,
                                 options: [String: String]) throws -> FakeQuantization {
        let store = network.store
        var layers: [FakeQuantization.Layer] = []
        var names: [String: String] = [:]
        for group in EncoderQuantizer.linearGroups(network.names) {
            let views = group.weights.compactMap { store.view(named: $0) }
            guard views.count == group.weights.count, let first = views.first, first.shape.count == 2 else {
                throw PluginError("quantization-aware training: the model has no weights \(group.weights.joined(separator: ", "))")
            }
            // The stacked weight is read in place: Q, K and V must follow each other in the store.
            for (a, b) in zip(views, views.dropFirst()) where b.offset != a.offset + a.count {
                throw PluginError("quantization-aware training: \(b.name) does not follow \(a.name) in the parameter store")
            }
            let key = group.weights.map { String($0.dropLast(7)) }.joined(separator: "|")
            names[key] = group.name
            layers.append(FakeQuantization.Layer(key: key, weightOffset: first.offset, rows: views.reduce(0) { $0 + $1.shape[0] },
                                                 cols: first.shape[1]))
        }
        return FakeQuantization(layers: layers, scheme: scheme) { layer, weight in
            let name = names[layer.key] ?? layer.key
            let view = WeightView(data: UnsafeBufferPointer(start: weight, count: layer.rows * layer.cols), rows: layer.rows,
                                  cols: layer.cols, layerName: name, layerKind: EncoderQuantizer.layerKind(name, role: .linear))
            try layer.fakeWeight.withUnsafeMutableBufferPointer { fakeWeight in
                try layer.pass.withUnsafeMutableBufferPointer { pass in
                    try quantizer.fakeQuantize(weight: view, options: options, into: fakeWeight.baseAddress!, pass: pass.baseAddress!)
                }
            }
        }
    }
}
