import Foundation
import Logging

/// A model a stage hands to the next: something that classifies, can be saved and measured.
/// `Classifier` (float weights, possibly with pruning masks applied) is one; a quantized model is another.
protocol DeployableModel: AnyObject {
    var tokenizer: BertTokenizer { get }
    /// Probability above which a comment is called hate speech; set from the threshold search after every stage.
    var threshold: Double { get set }
    /// What the model is, e.g. `bert 2×128`, `bert 2×128, 50% sparse, int4`.
    var summary: String { get }
    var parameterCount: Int { get }
    var nonZeroParameterCount: Int { get }
    /// Tokens per comment it was trained with, saved in `sankshep.json` (nil: unknown).
    var maxLength: Int? { get set }
    /// The longest input the model reads (its position embeddings), [CLS] and [SEP] included.
    var maxPositions: Int { get }
    /// Probabilities of hate speech (`BinaryReadout`) of `rows` (indices into `sequences`, ids of this
    /// model's own tokenizer), in that order. Throws when an id or length is outside what the model reads.
    func probabilities(sequences: [[Int]], rows: [Int], batchSize: Int) throws -> [Float]
    /// Writes the model folder (weights, config, tokenizer, sankshep.json) atomically, file by file.
    func save(to directory: URL, extra: [String: String]) throws
}

extension Classifier: DeployableModel {
    var summary: String {
        "\(config.modelType.rawValue) \(config.numLayers)×\(config.hiddenSize)"
    }

    var nonZeroParameterCount: Int {
        let store = network.store
        var count = 0
        for index in 0..<store.count where store.values[index] != 0 { count += 1 }
        return count
    }

    var maxPositions: Int { config.maxPositionEmbeddings }

    func probabilities(sequences: [[Int]], rows: [Int], batchSize: Int) throws -> [Float] {
        try Evaluator.probabilities(network: network, sequences: sequences, rows: rows, padID: tokenizer.padId, batchSize: batchSize)
    }
}

/// What a compression stage is given: the previous stage's model, the teacher, the shared context.
struct StageInput {
    /// The model the previous stage produced (the teacher after the baseline).
    let model: DeployableModel
    let teacher: Classifier
    let baseline: BaselineOutcome
    let context: RunContext
    /// The recipe's label of this stage (`distill`, `prune_wanda`, …) and the folder name of its model.
    let label: String
    let modelTag: String
    /// The method and options a prune or quantize stage calls, resolved against the plugin schemas.
    let method: ResolvedMethod?
    let registry: PluginRegistry
    /// The run's training settings (batch, lr, seed, …) for stages that train.
    let settings: TrainingSettings
}

/// A stage after the baseline: distillation, pruning or quantization.
protocol CompressionStage {
    func run(_ input: StageInput) throws -> DeployableModel
}

/// Runs a validated recipe: the baseline, then each compression stage on the previous stage's model;
/// after every stage the model is evaluated on the same held-out rows with the threshold searched
/// again, saved, measured (size on disk, latency at batch 1 and 32), and given a summary row.
struct PipelineRunner {
    let recipe: Recipe
    let methods: [ResolvedMethod?]
    let registry: PluginRegistry
    let settings: TrainingSettings
    let makeTeacher: () throws -> Classifier
    /// The implementation of each stage after the baseline, in recipe order.
    let stages: [CompressionStage]
    /// `--skip_baseline`: the user's teacher replaces the baseline's training.
    var givenTeacher: GivenTeacher? = nil
    /// Loads a stage's saved model folder (to continue a resumed run after its last completed stage).
    func loadModel(_ directory: URL, _ logger: Logger) throws -> DeployableModel {
        try loadDeployableModel(from: directory, registry: registry, logger: logger)
    }

    func run(_ context: RunContext) throws -> (BaselineOutcome, PipelineSummary) {
        let logger = context.logger
        let baseline = try givenTeacher?.outcome(context) ?? BaselineStage(settings: settings, makeModel: makeTeacher).run(context)
        let summaryURL = context.outputDirectory.appendingPathComponent("pipeline_summary_\(context.tag).csv")
        var summary = PipelineSummary()
        // A resumed run keeps the rows (and models) of the stages that completed before it was stopped.
        let completed = context.resume ? (try? PipelineSummary.read(from: summaryURL))?.rows ?? [] : []
        let labels = recipe.stageLabels
        let heldOut = baseline.heldOut
        let heldOutLabels = heldOut.map { context.dataset.labels[$0] }

        // The teacher's row: the baseline's model on the held-out rows.
        let teacherSize = try HuggingFaceDirectory.shippedBytes(in: baseline.teacherDirectory)
        let maxLength = context.maxLength
        let teacherRow = try completed.first { $0.stage == labels[0] }
            ?? measure(baseline.teacher, stage: labels[0], directory: baseline.teacherDirectory,
                       heldOut: heldOut, heldOutLabels: heldOutLabels, teacherSize: teacherSize, context: context)
        summary.record(teacherRow)
        try summary.write(to: summaryURL)

        var current: DeployableModel = baseline.teacher
        var currentDirectory = baseline.teacherDirectory
        for index in recipe.stages.indices.dropFirst() {
            let label = labels[index]
            let modelTag = recipe.modelTag(afterStage: index)
            let directory = context.outputDirectory.appendingPathComponent(modelTag)
            if let row = completed.first(where: { $0.stage == label }),
               let model = try? loadModel(directory, context.logger) {
                logger.info("stage \(index + 1)/\(recipe.stages.count): \(label) already complete (\(directory.path))")
                summary.record(row)
                current = model
                currentDirectory = directory
                continue
            }
            logger.info("stage \(index + 1)/\(recipe.stages.count): \(label)")
            let stage = stages[index - 1]
            let input = StageInput(model: current, teacher: baseline.teacher, baseline: baseline, context: context,
                                   label: label, modelTag: modelTag, method: methods[index], registry: registry, settings: settings)
            let model = try stage.run(input)
            // The threshold is searched again on the held-out rows for every stage.
            let probabilities = try model.probabilities(sequences: context.corpus.sequences(for: model), rows: heldOut, batchSize: 64)
            model.threshold = ThresholdSearch.search(probabilities: probabilities, labels: heldOutLabels).bestOfSweep.threshold
            model.maxLength = maxLength
            try model.save(to: directory, extra: ["stage": label])
            let row = try measure(model, stage: label, directory: directory, heldOut: heldOut, heldOutLabels: heldOutLabels,
                                  teacherSize: teacherSize, context: context, probabilities: probabilities)
            summary.record(row)
            try summary.write(to: summaryURL)
            current = model
            currentDirectory = directory
        }
        // The deployable result: the last stage's folder as it was measured (the same files, so the
        // summary's size is the folder's), with its card and provenance.
        let final = context.outputDirectory.appendingPathComponent(recipe.stageTag)
        try HuggingFaceDirectory.publish(currentDirectory, as: final)
        let provenance = try makeProvenance(summary: summary, baseline: baseline, context: context)
        try provenance.write(to: final)
        let headLabels = (try? ModelConfig.read(final.appendingPathComponent("config.json")))?.numLabels ?? 1
        if let finalRow = summary.rows.last {
            try AtomicFile.write(Data(ModelCard.markdown(title: recipe.stageTag, provenance: provenance, rows: summary.rows, final: finalRow,
                                                         loading: ModelCard.Loading(folder: final), labels: headLabels,
                                                         maxLength: maxLength).utf8),
                                 to: final.appendingPathComponent("README.md"))
        }
        try writeReport(summary: summary, baseline: baseline, provenance: provenance, context: context)
        try logJobResults(final: summary.rows.last ?? teacherRow, baseline: baseline, context: context)
        return (baseline, summary)
    }

    /// On the job's run: the final model's held-out metrics, the baseline's mean cross-validated
    /// macro-F1, and the summaries and report as artifacts (copies of the files in --output_dir).
    private func logJobResults(final row: StageSummaryRow, baseline: BaselineOutcome, context: RunContext) throws {
        var metrics = ["accuracy": row.accuracy, "precision": row.precision, "recall": row.recall, "f1": row.f1,
                       "macro_f1": row.macroF1, "threshold": row.threshold, "size_mb": row.sizeMB,
                       "compression_ratio": row.compressionRatio, "latency_ms_batch1": row.latencyMsBatch1,
                       "latency_ms_batch32": row.latencyMsBatch32,
                       "cv_mean_macro_f1": baseline.folds.map(\.sweepBest.macroF1).reduce(0, +) / Double(max(baseline.folds.count, 1))]
        if let rocAUC = row.rocAUC { metrics["roc_auc"] = rocAUC }
        try context.jobRun.logMetrics(metrics, step: 0)
        // The fold assignment is there when the run wrote one.
        let names = ["folds_\(context.tag).csv", "fold_summary_\(context.tag).csv", "best_metrics_\(context.tag).csv",
                     "pipeline_summary_\(context.tag).csv", HTMLReport.fileName]
        for name in names {
            let file = context.outputDirectory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: file.path) { try context.jobRun.logArtifact(file) }
        }
    }

    private func makeProvenance(summary: PipelineSummary, baseline: BaselineOutcome, context: RunContext) throws -> Provenance {
        let stages = recipe.stages.enumerated().map { index, stage in
            let row = summary.rows.first { $0.stage == recipe.stageLabels[index] }
            return Provenance.Stage(label: recipe.stageLabels[index], kind: stage.name,
                                    options: Provenance.options(of: stage, method: methods[index]),
                                    method: methods[index]?.schema.name, plugin: methods[index]?.schema.plugin,
                                    pluginVersion: methods[index]?.schema.version, macroF1: row?.macroF1,
                                    threshold: row?.threshold, sizeMB: row?.sizeMB)
        }
        let dataURL = context.dataURL
        return Provenance(sankshepVersion: Sankshep.configuration.version, recipe: recipe.name,
                          createdAt: ISO8601DateFormatter().string(from: Date()), seed: settings.seed,
                          author: context.author, dataPath: dataURL.path, dataRows: context.dataset.count,
                          dataSHA256: (try? Provenance.sha256(of: dataURL)) ?? "", heldOutRows: baseline.heldOut.count,
                          teacherFold: baseline.bestFold, stages: stages)
    }

    /// `report.html`: the summary table, size against macro-F1, latency, and the training curves.
    private func writeReport(summary: PipelineSummary, baseline: BaselineOutcome, provenance: Provenance, context: RunContext) throws {
        var curves: [Int: [(epoch: Int, trainLoss: Double, valMacroF1: Double)]] = [:]
        for fold in baseline.folds {
            curves[fold.fold] = fold.history.map { ($0.epoch, $0.trainLoss, $0.validationMacroF1) }
        }
        let details: [(label: String, value: String)] = [
            ("Recipe", recipe.name), ("Stages", recipe.stageLabels.joined(separator: " → ")),
            ("Data", "\(provenance.dataPath) (\(provenance.dataRows) comments)"),
            ("Held-out rows", "\(provenance.heldOutRows) (validation split of fold \(provenance.teacherFold))"),
            ("Seed", String(provenance.seed)), ("Final model", recipe.stageTag),
        ]
        try HTMLReport(details: details, summary: summary.rows, trainingCurves: curves, curvesTitle: "Baseline folds")
            .write(to: context.outputDirectory.appendingPathComponent(HTMLReport.fileName))
    }

    /// Evaluates, times and sizes a saved model, and logs the stage to MLflow.
    private func measure(_ model: DeployableModel, stage: String, directory: URL, heldOut: [Int], heldOutLabels: [Int],
                         teacherSize: Int, context: RunContext, probabilities known: [Float]? = nil) throws -> StageSummaryRow {
        let sequences = try context.corpus.sequences(for: model)
        let probabilities = try known ?? model.probabilities(sequences: sequences, rows: heldOut, batchSize: 64)
        let metrics = ThresholdSearch.search(probabilities: probabilities, labels: heldOutLabels).bestOfSweep
        let latency = try Latency.measure(model, sequences: sequences, rows: heldOut)
        let row = StageSummaryRow(stage: stage, model: model.summary, metrics: metrics, parameters: model.parameterCount,
                                  nonZeroParameters: model.nonZeroParameterCount, sizeBytes: try HuggingFaceDirectory.shippedBytes(in: directory),
                                  teacherSizeBytes: teacherSize, latencyMsBatch1: latency.batch1, latencyMsBatch32: latency.batch32)
        // One MLflow run per stage of a job; a resumed job measures again into the same run (another
        // job in the same folder, or one under another tag, starts its own under its own job run).
        let runFile = context.checkpointDirectory.appendingPathComponent("stage-\(stage)-\(context.tag).mlflow-run")
        let run = try context.nestedRun(name: "stage-\(stage)", tags: ["sankshep.stage": stage, "sankshep.tag": context.tag],
                                        runFile: runFile)
        var values = MetricsRow(metrics).mlflowMetrics
        values["size_mb"] = row.sizeMB
        values["latency_ms_batch1"] = row.latencyMsBatch1
        values["latency_ms_batch32"] = row.latencyMsBatch32
        values["compression_ratio"] = row.compressionRatio
        values["parameters"] = Double(row.parameters)
        values["nonzero_parameters"] = Double(row.nonZeroParameters)
        try run.logMetrics(values, step: 0)
        try run.finish()
        return row
    }
}

/// CPU latency of a model on real held-out comments: one comment at a time, and batches of 32.
enum Latency {
    static func measure(_ model: DeployableModel, sequences: [[Int]], rows: [Int], repeats: Int = 5) throws -> (batch1: Double, batch32: Double) {
        let sample = Array(rows.prefix(32))
        guard !sample.isEmpty else { return (0, 0) }
        func milliseconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        _ = try model.probabilities(sequences: sequences, rows: sample, batchSize: 32)   // warm-up
        let single = try sample.prefix(16).map { row in try milliseconds { _ = try model.probabilities(sequences: sequences, rows: [row], batchSize: 1) } }
        let batched = try (0..<repeats).map { _ in try milliseconds { _ = try model.probabilities(sequences: sequences, rows: sample, batchSize: 32) } }
        return (median(single), median(batched))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

