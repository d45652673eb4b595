import Foundation
import Logging

/// Stage 3: prune → heal → make permanent.
///
/// 1. choose the weights (`layers`: attention, ffn, encoder, linear, embeddings, all);
/// 2. for methods that ask (WANDA), collect input statistics on `calib_samples` training comments;
/// 3. masks from the plugin method: per layer, or one ranking over all layers (`scope=global`, through
///    the method's scores), or whole FFN neurons (`structure=ffn`), attention heads (`structure=heads`)
///    or both (`structure=both`) through the method's structured mode;
///    a schedule method (gradual) instead raises sparsity while fine-tuning, its criterion picking
///    the weights at every update;
/// 4. heal: fine-tune with the masks enforced after every optimizer step;
/// 5. make permanent: removed FFN neurons are cut out (`intermediate_size` shrinks), removed heads too
///    (`pruned_heads`); unstructured
///    zeros are stored as compressed-tensors sparse-bitmask, so the file shrinks.
///
/// The per-layer sparsity achieved is logged and written to `sparsity_<tag>.csv`.
struct PruningStage: CompressionStage {
    let stage: PruneStage

    /// Options the host reads itself (any pruner), given like method options (`--prune_option scope=global`).
    /// `scope`: `layer` (each layer to the sparsity) or `global` (one ranking over all selected layers);
    /// `structure`: `none`, `ffn` (whole feed-forward neurons, the same number in every layer), `heads`
    /// (whole attention heads, round(sparsity × heads) per layer, at least one kept; recorded in `pruned_heads`)
    /// or `both` (each of them at the sparsity).
    static let hostOptions: [String: [String]] = ["scope": ["layer", "global"], "structure": PruningPlan.Structure.allCases.map(\.rawValue)]

    func run(_ input: StageInput) throws -> DeployableModel {
        let logger = input.context.logger
        guard let source = input.model as? Classifier else {
            throw PruningError("\(input.label): pruning needs a float model, got \(input.model.summary)")
        }
        guard let method = input.method else { throw PruningError("\(input.label): no pruning method was resolved") }
        let plan = try PruningPlan(stage: stage, method: method, registry: input.registry, label: input.label)
        // The previous stage's model (often the teacher) is left as it was.
        let classifier = source.copy()
        let network = classifier.network
        let layers = PrunableLayer.select(network, stage.layers)
        let context = input.context
        let fold = context.folds[input.baseline.bestFold - 1]
        let sequences = try context.corpus.sequences(for: classifier)

        // 2. Calibration statistics, from training comments (never the held-out ones).
        var stats: [String: ActivationStats] = [:]
        if plan.criterion.neededStatistics != 0 {
            let rows = Self.calibrationRows(fold.train, count: stage.calibSamples)
            logger.info("\(input.label): collecting activation statistics on \(rows.count) training comments")
            stats = try ActivationCollector.collect(network: network, layers: layers.filter { $0.kind != .embedding },
                                                    sequences: sequences, rows: rows, padID: classifier.tokenizer.padId)
            // The word embeddings' statistics are token counts, which need no forward: they are counted over
            // every training comment, not the calibration sample. With 512 comments most of the vocabulary
            // would never occur, score 0 and lose its embedding, though held-out comments use it.
            for layer in layers where layer.kind == .embedding {
                stats[layer.name] = ActivationCollector.tokenStatistics(sequences: fold.train.map { sequences[$0] },
                                                                        vocabulary: layer.rows)
            }
        }
        let masker = Masker(plan: plan, layers: layers, stats: stats)

        // 3 + 4. Masks, then healing with the masks enforced (a schedule masks while healing).
        var settings = input.settings
        settings.freezeBase = false
        let masks: PruningMasks
        if let schedule = plan.schedule {
            masks = try healGradually(classifier, schedule: schedule, masker: masker, settings: settings, fold: fold, input: input)
        } else {
            masks = try masker.masks(for: network, sparsity: stage.sparsity)
            masks.enforce(on: network.store)
            logSparsity(network, layers: layers, label: "\(input.label) after masking", logger: logger)
            if stage.fineTune {
                try heal(classifier, masks: masks, settings: settings, epochs: stage.fineTuneEpochs, fold: fold, input: input,
                         phase: "heal")
            }
        }
        masks.enforce(on: network.store)

        // Report on the masked model (structured or not, zeros are zeros).
        let report = PruningMasks.report(network.store, layers: layers)
        logSparsity(network, layers: layers, label: "\(input.label) final", logger: logger)
        try LayerSparsity.write(report, to: context.outputDirectory.appendingPathComponent("sparsity_\(context.tag).csv"))

        // 5. Make permanent.
        return try Self.makePermanent(classifier, masks: masks, layers: layers, structure: plan.structure, logger: logger)
    }

    /// Cuts out removed FFN neurons (structured) and marks the unstructured layers as sparse-bitmask
    /// in the config, so that saving stores them compactly.
    static func makePermanent(_ classifier: Classifier, masks: PruningMasks, layers: [PrunableLayer],
                              structure: PruningPlan.Structure, logger: Logger) throws -> Classifier {
        var result = classifier
        var compressed = layers
        if structure.removesFFN, let keep = StructuredFFN.keptNeurons(masks, network: classifier.network) {
            result = try StructuredFFN.remove(classifier, keep: keep)
            let ffnModules = Set(classifier.network.names.layers.flatMap { [$0.ffnIn, $0.ffnOut] })
            compressed = layers.filter { !ffnModules.contains($0.name) }
            logger.info("FFN neurons removed: intermediate_size \(classifier.config.intermediateSize) → \(result.config.intermediateSize)")
        }
        if structure.removesHeads, let keep = StructuredHeads.keptHeads(masks, network: classifier.network) {
            // From the model whose FFN neurons (if any) already went: its attention weights are the same.
            result = try StructuredHeads.remove(result, keep: keep)
            let attentionModules = Set(classifier.network.names.layers.flatMap { [$0.query, $0.key, $0.value, $0.attentionOutput] })
            compressed = compressed.filter { !attentionModules.contains($0.name) }
            let heads = (0..<result.network.shape.layers).map { result.network.shape.heads(inLayer: $0) }
            logger.info("attention heads removed: heads per layer \(classifier.config.numHeads) → \(heads); pruned_heads \(result.config.prunedHeads)")
        }
        if !compressed.isEmpty {
            let zeros = PruningMasks.report(result.network.store, layers: compressed).reduce(0) { $0 + $1.zeros }
            let total = compressed.reduce(0) { $0 + $1.count }
            result.config.raw["quantization_config"] = SparseBitmask.quantizationConfig(
                targets: compressed.map(\.name), globalSparsity: Double(zeros) / Double(max(total, 1)))
        }
        return result
    }

    /// Fine-tunes with `masks` enforced after every optimizer step.
    private func heal(_ classifier: Classifier, masks: PruningMasks, settings: TrainingSettings, epochs: Int, fold: FoldSplit,
                      input: StageInput, phase: String, beforeStep: ((Int, Int) throws -> Void)? = nil) throws {
        var settings = settings
        settings.epochs = epochs
        let context = input.context
        let trainer = Trainer(settings: settings, logger: context.logger)
        let store = classifier.network.store
        let checkpoint = context.checkpointDirectory.appendingPathComponent("\(input.modelTag)-\(input.label)-\(phase).checkpoint.safetensors")
        try FileManager.default.createDirectory(at: context.checkpointDirectory, withIntermediateDirectories: true)
        _ = try trainer.train(classifier, sequences: context.corpus.sequences(for: classifier), labels: context.dataset.labels, train: fold.train,
                              validation: input.baseline.heldOut, label: "\(input.label) \(phase)", checkpoint: checkpoint,
                              resume: context.resume,
                              hooks: TrainingHooks(beforeStep: beforeStep, afterStep: { masks.enforce(on: store) }))
        try? FileManager.default.removeItem(at: checkpoint)
    }

    /// Gradual pruning: sparsity rises over the schedule's window while fine-tuning, masks recomputed
    /// at its update steps by the criterion; then the final masks heal for the remaining epochs.
    ///
    /// The ramp and the healing are two training runs because the trainer keeps the weights of its
    /// best validation epoch: in one run that could be an epoch before the final sparsity was reached.
    private func healGradually(_ classifier: Classifier, schedule: ScheduleMethod, masker: Masker, settings: TrainingSettings,
                               fold: FoldSplit, input: StageInput) throws -> PruningMasks {
        let network = classifier.network
        let window = stage.scheduleWindow
        let stepsPerEpoch = (fold.train.count + settings.batchSize - 1) / settings.batchSize
        let logger = input.context.logger
        if window.endEpoch > window.startEpoch {
            // Steps count from 0: the optimizer step with the trainer's 1-based `globalStep` g is step g - 1.
            let scheduleWindow = ScheduleWindow(startStep: window.startEpoch * stepsPerEpoch, endStep: window.endEpoch * stepsPerEpoch,
                                                frequency: window.frequency, finalSparsity: stage.sparsity)
            let current = PruningMasks(layers: masker.layers)
            var currentSparsity = -1.0
            let options = masker.plan.scheduleOptions
            try heal(classifier, masks: current, settings: settings, epochs: window.endEpoch, fold: fold, input: input, phase: "ramp",
                     beforeStep: { globalStep, _ in
                let (sparsity, update) = try schedule.sparsity(atStep: globalStep - 1, window: scheduleWindow, options: options)
                // A resumed run has no masks yet: it recomputes them at the sparsity the schedule holds.
                guard update || (currentSparsity < 0 && sparsity > 0) else { return }
                let masks = try masker.masks(for: network, sparsity: sparsity)
                current.replace(with: masks)
                current.enforce(on: network.store)
                currentSparsity = sparsity
                logger.debug("\(input.label): step \(globalStep - 1): sparsity \(String(format: "%.4f", sparsity))")
            })
        }
        // The schedule's last update: the final sparsity, then healing at it.
        let masks = try masker.masks(for: network, sparsity: stage.sparsity)
        masks.enforce(on: network.store)
        logSparsity(network, layers: masker.layers, label: "\(input.label) at the final sparsity", logger: logger)
        let healEpochs = stage.fineTuneEpochs - window.endEpoch
        if healEpochs > 0 {
            try heal(classifier, masks: masks, settings: settings, epochs: healEpochs, fold: fold, input: input, phase: "heal")
        }
        return masks
    }

    private func logSparsity(_ network: SequenceClassifier, layers: [PrunableLayer], label: String, logger: Logger) {
        let report = PruningMasks.report(network.store, layers: layers)
        let zeros = report.reduce(0) { $0 + $1.zeros }, total = report.reduce(0) { $0 + $1.total }
        logger.info("\(label): \(zeros) of \(total) weights are zero (\(String(format: "%.2f", 100 * Double(zeros) / Double(max(total, 1))))%)")
        for row in report {
            logger.info("  \(row.layer) (\(row.rows)×\(row.cols)): \(String(format: "%.2f", 100 * row.sparsity))%")
        }
    }

    /// `count` training rows spread evenly over the split (deterministic, no held-out rows).
    static func calibrationRows(_ train: [Int], count: Int) -> [Int] {
        guard count < train.count else { return train }
        return (0..<count).map { train[$0 * train.count / count] }
    }
}

/// What a prune stage calls: the pruner (or the schedule and its criterion) and the host's options.
struct PruningPlan {
    enum Scope: String { case layer, global }
    enum Structure: String, CaseIterable {
        case none, ffn, heads, both

        var removesFFN: Bool { self == .ffn || self == .both }
        var removesHeads: Bool { self == .heads || self == .both }
    }

    /// The pruner that chooses the weights: the method itself, or a schedule's criterion.
    let criterion: PrunerMethod
    let schedule: ScheduleMethod?
    /// The options the plugin methods see (host options removed).
    let criterionOptions: [String: String]
    let scheduleOptions: [String: String]
    let scope: Scope
    let structure: Structure

    init(stage: PruneStage, method: ResolvedMethod, registry: PluginRegistry, label: String) throws {
        var options = method.options
        let scopeName = options.removeValue(forKey: "scope") ?? stage.options["scope"] ?? "layer"
        let structureName = options.removeValue(forKey: "structure") ?? stage.options["structure"] ?? "none"
        guard let scope = Scope(rawValue: scopeName) else {
            throw PruningError("\(label): option 'scope' must be layer or global, got '\(scopeName)'")
        }
        guard let structure = Structure(rawValue: structureName) else {
            throw PruningError("\(label): option 'structure' must be none, ffn, heads or both, got '\(structureName)'")
        }
        self.scope = scope
        self.structure = structure
        if method.schema.kind == .schedule {
            let schedule = try registry.schedule(named: method.schema.name)
            self.schedule = schedule
            self.scheduleOptions = options
            self.criterion = try schedule.criterion(options: options, in: registry)
            // The criterion runs with its own declared defaults.
            self.criterionOptions = [:]
        } else {
            self.schedule = nil
            self.scheduleOptions = [:]
            self.criterion = try registry.pruner(named: method.schema.name)
            self.criterionOptions = options
        }
        if structure != .none, !criterion.supportsStructured {
            throw PruningError("\(label): structure=\(structure.rawValue) needs a pruner with a structured mode; '\(criterion.name)' has none")
        }
        if structure.removesHeads, stage.layers == .ffn || stage.layers == .embeddings {
            throw PruningError("\(label): structure=\(structure.rawValue) prunes attention heads, but --prune_layers \(stage.layers.rawValue) selects no attention layer")
        }
        if structure.removesFFN, stage.layers == .attention || stage.layers == .embeddings {
            throw PruningError("\(label): structure=\(structure.rawValue) prunes FFN neurons, but --prune_layers \(stage.layers.rawValue) selects no FFN layer")
        }
        if scope == .global, !criterion.supportsGlobal {
            throw PruningError("\(label): scope=global needs a pruner that exposes its scores; '\(criterion.name)' does not")
        }
    }
}

/// Computes masks of the selected layers at a sparsity, as the plan says.
struct Masker {
    let plan: PruningPlan
    let layers: [PrunableLayer]
    let stats: [String: ActivationStats]

    func masks(for network: SequenceClassifier, sparsity: Double) throws -> PruningMasks {
        let store = network.store
        let masks = PruningMasks(layers: layers)
        let pruner = plan.criterion
        // The word embeddings are handed over transposed (see PrunableLayer): (hidden, vocab) copies,
        // alive until the masks are made.
        var transposed: [String: UnsafeMutableBufferPointer<Float>] = [:]
        defer { for buffer in transposed.values { buffer.deallocate() } }
        for layer in layers where layer.presentedTransposed {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: layer.count)
            Self.transpose(UnsafeBufferPointer(start: store.pointer(layer.weightName), count: layer.count),
                           rows: layer.rows, cols: layer.cols, into: buffer)
            transposed[layer.name] = buffer
        }
        func view(_ layer: PrunableLayer) -> WeightView {
            let data = transposed[layer.name].map { UnsafeBufferPointer($0) }
                ?? UnsafeBufferPointer(start: store.pointer(layer.weightName), count: layer.count)
            return WeightView(data: data, rows: layer.presentedRows, cols: layer.presentedCols, layerName: layer.name, layerKind: layer.kind)
        }
        /// A mask in the pruner's order, put back in the stored order.
        func stored(_ mask: [UInt8], _ layer: PrunableLayer) -> [UInt8] {
            guard layer.presentedTransposed else { return mask }
            var result = [UInt8](repeating: 0, count: mask.count)
            mask.withUnsafeBufferPointer { source in
                result.withUnsafeMutableBufferPointer { Self.transpose(source, rows: layer.presentedRows, cols: layer.presentedCols, into: $0) }
            }
            return result
        }
        var unstructured = layers
        if plan.structure.removesFFN {
            // Whole neurons: rank by the FFN input weight's rows; the output weight loses the same columns.
            for names in network.names.layers {
                guard let inLayer = layers.first(where: { $0.name == names.ffnIn }),
                      let outLayer = layers.first(where: { $0.name == names.ffnOut }) else { continue }
                let keep = try pruner.pruneStructured(weight: view(inLayer), axis: .rows, groupSize: 1, sparsity: sparsity,
                                                      options: plan.criterionOptions, stats: stats[inLayer.name])
                // in (ffn, H): row n; out (H, ffn): column n
                masks.set((0..<inLayer.count).map { keep[$0 / inLayer.cols] }, for: inLayer)
                masks.set((0..<outLayer.count).map { keep[$0 % outLayer.cols] }, for: outLayer)
                unstructured.removeAll { $0.name == inLayer.name || $0.name == outLayer.name }
            }
        }
        if plan.structure.removesHeads {
            // Whole heads, ranked by all of their weights (StructuredHeads.headRows); Q, K and V lose the
            // head's rows, the attention output its columns.
            let shape = network.shape, h = shape.hiddenSize
            for (index, names) in network.names.layers.enumerated() {
                let modules = [names.query, names.key, names.value, names.attentionOutput]
                let attention = modules.compactMap { module in layers.first { $0.name == module } }
                guard attention.count == modules.count else { continue }
                let a = shape.attentionWidth(layer: index), heads = shape.heads(inLayer: index)
                // A layer keeps at least one head: at most heads - 1 go, whatever the sparsity.
                let headSparsity = min(sparsity, Double(heads - 1) / Double(heads))
                let rows = StructuredHeads.headRows(store, names, width: a, hidden: h)   // (A, 4H)
                let keep = try rows.withUnsafeBufferPointer { data in
                    try pruner.pruneStructured(weight: WeightView(data: data, rows: a, cols: 4 * h, layerName: names.attentionOutput + " (heads)",
                                                                  layerKind: .attention),
                                               axis: .rows, groupSize: shape.headSize, sparsity: headSparsity, options: plan.criterionOptions)
                }
                for layer in attention {
                    // Q/K/V (A, H): row i; attention output (H, A): column i.
                    masks.set(layer.name == names.attentionOutput ? (0..<layer.count).map { keep[$0 % a] }
                                                                  : (0..<layer.count).map { keep[$0 / h] }, for: layer)
                }
                unstructured.removeAll { modules.contains($0.name) }
            }
        }
        if plan.scope == .global, !unstructured.isEmpty {
            let global = try pruner.pruneGlobally(weights: unstructured.map(view), sparsity: sparsity, options: plan.criterionOptions,
                                                  stats: unstructured.map { stats[$0.name] })
            for (layer, mask) in zip(unstructured, global) { masks.set(stored(mask, layer), for: layer) }
        } else {
            for layer in unstructured {
                masks.set(stored(try pruner.prune(weight: view(layer), sparsity: sparsity, options: plan.criterionOptions,
                                                  stats: stats[layer.name]), layer), for: layer)
            }
        }
        return masks
    }

    /// output (cols, rows) = input (rows, cols) transposed.
    static func transpose<T>(_ input: UnsafeBufferPointer<T>, rows: Int, cols: Int, into output: UnsafeMutableBufferPointer<T>) {
        precondition(input.count == rows * cols && output.count == rows * cols)
        for r in 0..<rows {
            for c in 0..<cols { output[c * rows + r] = input[r * cols + c] }
        }
    }
}

extension PruningMasks {
    /// Takes the masks of `other` (same layers), keeping this object's identity for hooks that hold it.
    func replace(with other: PruningMasks) {
        for layer in layers { if let mask = other.mask(layer.name) { set(mask, for: layer) } }
    }
}
