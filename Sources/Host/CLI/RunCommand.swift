import ArgumentParser
import Foundation
import Kernels
import Logging

/// `sankshep run`: the pipeline — baseline teacher, then the compression stages the pipeline names.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train the teacher with k-fold cross-validation and compress it, stage by stage.",
        discussion: """
        With no options, runs on the bundled data (data/HateSpeech.csv) with the built-in small presets. \
        Every stage is evaluated on the same held-out rows (the best fold's validation split; fold 1's \
        with --skip_baseline), with the decision threshold searched again. Outputs go to --output_dir \
        (folds_<tag>.csv says which fold holds each CSV row); --resume continues an interrupted run.

        The options are the seed framework's, with its defaults, except where the built-in presets have \
        their own (--batch, --lr, --epochs) and --student_path (default: the student preset). The final \
        model folder is always a Hugging Face folder (--save_huggingface is accepted).

        The stages' options below apply to the stages --pipeline runs; a --recipe file sets them per stage \
        instead (docs/recipes.md).
        \(StageArguments.helpText)
        """
    )

    @Option(help: "Stages to run: \(PipelineName.allCases.map(\.rawValue).joined(separator: ", ")).", transform: oneLineChoice)
    var pipeline: PipelineName = .baseline

    @OptionGroup(title: "Data") var data: DataOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Training") var training: TrainingOptions
    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "MLflow") var tracking: TrackingOptions
    @OptionGroup(title: "Plugins") var plugins: PluginPathOptions

    @Option(help: "A YAML recipe of stages with per-stage options and methods (see docs/recipes.md); replaces --pipeline.")
    var recipe: String?

    /// The stage options (`--kd_alpha`, `--prune_sparsity`, …), read by `StageArguments` from the stage
    /// declarations and listed in the discussion above.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var stageFlags: [String] = []

    func validate() throws {
        // Every stage's flags are checked whatever the pipeline, as the seed does; the methods they
        // name are checked once the plugins are loaded.
        let given = try StageArguments(stageFlags).values
        var notes: [String] = []
        for kind in StageCatalog.kinds { _ = try kind.fromCommandLine(given[kind.name] ?? [:], methods: NoMethods(), notes: &notes) }
        if model.modelPath == nil, ModelPreset.named(model.teacherPreset) == nil {
            throw ValidationError("--teacher_preset: unknown preset '\(model.teacherPreset)'; known: \(ModelPreset.all.map(\.name).joined(separator: ", "))")
        }
    }

    func run() throws {
        let logger = Logging.configure()
        sk_set_threads(Int32(training.threads ?? ProcessInfo.processInfo.activeProcessorCount))
        // Everything that can be checked is checked before any work: the recipe, its methods and
        // options against the loaded plugins, and that this build has every stage it names.
        let registry = try plugins.registry()
        let recipe = try recipe.map { try Recipe.load(contentsOf: URL(fileURLWithPath: $0)) } ?? builtInRecipe(registry, logger: logger)
        let methods = try recipe.validate(methods: registry)
        var stages: [CompressionStage] = []
        for (index, stage) in recipe.stages.enumerated().dropFirst() {
            guard let implementation = stage.settings.implementation() else {
                throw ValidationFailure("\(recipe.name): stage \(index + 1) '\(recipe.stageLabels[index])' is not available yet")
            }
            stages.append(implementation)
        }
        let started = Date()
        let outputDirectory = URL(fileURLWithPath: output.outputDir)
        let tag = output.tag ?? recipe.name
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        // The tracking server is asked first: one that cannot be reached stops the job before any work.
        let (store, experimentID) = try tracking.openStore(outputDirectory: outputDirectory)
        let (jobRun, isNewRun) = try startJobRun(store: store, experimentID: experimentID, tag: tag, outputDirectory: outputDirectory)
        do {
            try runPipeline(recipe: recipe, methods: methods, registry: registry, stages: stages, tag: tag,
                            outputDirectory: outputDirectory, store: store, experimentID: experimentID, jobRun: jobRun,
                            logsParams: isNewRun, started: started, logger: logger)
        } catch {
            try? jobRun.finish(status: .failed)
            if let warning = store.close() { logger.warning("\(warning)") }
            throw error
        }
        try jobRun.finish(status: .finished)
        if let warning = store.close() { logger.warning("\(warning)") }
    }

    /// The job's own run (named by its tag), the parent of its fold and stage runs; a resumed job
    /// continues it (its params are logged already).
    private func startJobRun(store: any TrackingStore, experimentID: String, tag: String,
                             outputDirectory: URL) throws -> (run: any TrackingRun, isNew: Bool) {
        let runFile = outputDirectory.appendingPathComponent("checkpoints/job-\(tag).mlflow-run")
        if output.resume, let runID = try? String(contentsOf: runFile, encoding: .utf8),
           let run = try? store.resumeRun(experimentID: experimentID, runID: runID) {
            return (run, false)
        }
        let run = try store.startRun(experimentID: experimentID, name: tag, tags: ["sankshep.tag": tag, "sankshep.stage": "job"])
        try AtomicFile.write(Data(run.runID.utf8), to: runFile)
        return (run, true)
    }

    private func runPipeline(recipe: Recipe, methods: [ResolvedMethod?], registry: PluginRegistry, stages: [CompressionStage],
                             tag: String, outputDirectory: URL, store: any TrackingStore, experimentID: String,
                             jobRun: any TrackingRun, logsParams: Bool, started: Date, logger: Logger) throws {
        // Data.
        let dataURL = try data.dataPath.map { URL(fileURLWithPath: $0) } ?? BundledResources.defaultDataset()
        let csvOptions = data.csvOptions(seed: training.seed)
        let dataset = try CommentDataset.load(contentsOf: dataURL, options: csvOptions, logger: logger)
        logger.info("\(dataURL.path): \(dataset.count) comments, \(dataset.positives) hate speech")
        let tokenCache = TokenCache(directory: URL(fileURLWithPath: output.cacheDir),
                                    dataKey: try TokenCache.dataKey(file: dataURL, options: csvOptions))

        // The teacher: a built-in preset or a Hugging Face folder.
        let preset = model.modelPath == nil ? ModelPreset.named(model.teacherPreset)! : nil
        let settings = TrainingSettings(
            batchSize: training.batch ?? preset?.batchSize ?? 32,
            learningRate: training.lr ?? preset?.learningRate ?? 2e-5,
            epochs: training.epochs ?? preset?.epochs ?? 15,
            warmupRatio: training.warmupRatio, weightDecay: training.weightDecay,
            gradientClipNorm: training.gradientClipNorm, earlyStoppingPatience: training.earlyStoppingPatience,
            scheduler: training.schedulerType, loss: training.lossType, focalAlpha: training.focalAlpha,
            focalGamma: training.focalGamma, useClassWeights: training.useClassWeights, freezeBase: training.freezeBase,
            seed: training.seed)
        let tokenizerDirectory = try BundledResources.tokenizerDirectory()
        let makeTeacher: () throws -> Classifier = { [model, training] in
            if let path = model.modelPath {
                return try Classifier.load(from: URL(fileURLWithPath: path), pooling: training.poolingType,
                                           dropout: training.dropout, seed: training.seed, logger: logger)
            }
            return try Classifier.fromPreset(preset!, tokenizerDirectory: tokenizerDirectory, dropout: training.dropout,
                                             pooling: training.poolingType, seed: training.seed)
        }
        let givenTeacher = try model.teacherCheckpoint.map { path in
            try GivenTeacher.load(URL(fileURLWithPath: path), modelPath: model.modelPath.map { URL(fileURLWithPath: $0) },
                                  preset: preset, tokenizerDirectory: tokenizerDirectory,
                                  stagingDirectory: outputDirectory.appendingPathComponent("checkpoints/teacher_checkpoint"),
                                  pooling: training.poolingType, dropout: training.dropout, seed: training.seed, logger: logger)
        }
        let prototype = try givenTeacher?.teacher ?? makeTeacher()
        let teacherName = model.teacherCheckpoint ?? preset.map { "preset \($0.name) (\($0.summary))" } ?? model.modelPath ?? ""
        logger.info("teacher: \(teacherName), \(prototype.parameterCount) parameters")
        let corpus = TokenizedCorpus(texts: dataset.texts, maxLength: data.maxLength) { [dataset] tokenizer, maxLength in
            tokenCache.sequences(dataset.texts, tokenizer: tokenizer, maxLength: maxLength, logger: logger)
        }
        // Tokenized now, so a tokenizer the model cannot read fails before any training.
        _ = try corpus.sequences(for: prototype)

        let (folds, foldReport) = try Folds.kFold(texts: dataset.texts, labels: dataset.labels, k: training.numFolds,
                                                  stratification: training.stratificationType, seed: UInt64(training.seed))
        for line in foldReport.lines { logger.info("\(line)") }
        try FoldAssignment.write(folds: folds, dataset: dataset, to: outputDirectory.appendingPathComponent("folds_\(tag).csv"))

        let parameters = runParameters(settings: settings, preset: preset, dataURL: dataURL)
        if logsParams { try jobRun.logParams(parameters) }
        let context = RunContext(
            outputDirectory: outputDirectory, tag: tag, dataset: dataset, corpus: corpus, folds: folds,
            foldReport: foldReport, resume: output.resume, tracking: store, experimentID: experimentID, jobRun: jobRun,
            author: tracking.author, parameters: parameters, dataURL: dataURL, maxLength: data.maxLength, logger: logger)

        let runner = PipelineRunner(recipe: recipe, methods: methods, registry: registry, settings: settings,
                                    makeTeacher: makeTeacher, stages: stages, givenTeacher: givenTeacher)
        let (baseline, summary) = try runner.run(context)
        printSummary(baseline, context: context, seconds: Date().timeIntervalSince(started))
        print("")
        print(SummaryTable.render(summary.rows))
    }

    /// The recipe of `--pipeline` from the seed's stage options; says how it read them.
    private func builtInRecipe(_ registry: PluginRegistry, logger: Logger) throws -> Recipe {
        var notes: [String] = []
        let recipe = try Recipe.builtIn(pipeline, given: try StageArguments(stageFlags).values, methods: registry, notes: &notes)
        for note in notes { logger.notice("\(note)") }
        return recipe
    }

    private func runParameters(settings: TrainingSettings, preset: ModelPreset?, dataURL: URL) -> [String: String] {
        [
            "pipeline": pipeline.rawValue, "data_path": dataURL.path, "model": preset?.name ?? model.modelPath ?? "",
            "batch": String(settings.batchSize), "lr": String(settings.learningRate), "epochs": String(settings.epochs),
            "num_folds": String(training.numFolds), "max_length": String(data.maxLength), "seed": String(training.seed),
            "stratification_type": training.stratificationType.rawValue, "dropout": String(training.dropout),
            "weight_decay": String(settings.weightDecay), "warmup_ratio": String(settings.warmupRatio),
            "gradient_clip_norm": String(settings.gradientClipNorm), "early_stopping_patience": String(settings.earlyStoppingPatience),
            "freeze_base": String(settings.freezeBase), "use_class_weights": String(settings.useClassWeights),
            "scheduler_type": settings.scheduler.rawValue, "loss_type": settings.loss.rawValue,
            "pooling_type": training.poolingType.rawValue, "data_fraction": String(data.dataFraction),
        ].merging(model.teacherCheckpoint.map { ["teacher_checkpoint": $0] } ?? [:]) { $1 }
    }

    private func printSummary(_ baseline: BaselineOutcome, context: RunContext, seconds: Double) {
        guard !baseline.folds.isEmpty else {
            print("\nBaseline skipped: teacher \(model.teacherCheckpoint ?? "") → \(baseline.teacherDirectory.path)")
            print(String(format: "finished in %.0f s; results in %@", seconds, context.outputDirectory.path))
            return
        }
        var lines = ["", "Baseline, \(baseline.folds.count)-fold cross-validation (best of the 0.30–0.60 threshold sweep):",
                     "fold  macro-F1  F1      accuracy  ROC-AUC  threshold  best epoch"]
        for fold in baseline.folds {
            lines.append(String(format: "%4d  %.4f    %.4f  %.4f    %@   %.2f       %d", fold.fold, fold.sweepBest.macroF1,
                                fold.sweepBest.f1, fold.sweepBest.accuracy,
                                fold.sweepBest.rocAUC.map { String(format: "%.4f", $0) } ?? "  n/a ",
                                fold.sweepBest.threshold, fold.bestEpoch))
        }
        let meanF1 = baseline.folds.map(\.sweepBest.macroF1).reduce(0, +) / Double(baseline.folds.count)
        lines.append(String(format: "mean  %.4f", meanF1))
        lines.append("teacher: fold \(baseline.bestFold) → \(baseline.teacherDirectory.path)")
        lines.append(String(format: "finished in %.0f s; results in %@", seconds, context.outputDirectory.path))
        print(lines.joined(separator: "\n"))
    }
}

enum Logging {
    /// Log lines to standard error, once per process.
    static func configure() -> Logger {
        LoggingBootstrap.once
        return Logger(label: "sankshep")
    }
}

private enum LoggingBootstrap {
    static let once: Void = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["SANKSHEP_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
    }()
}
