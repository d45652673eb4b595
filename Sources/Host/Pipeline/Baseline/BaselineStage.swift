import Foundation
import Logging

/// Everything a pipeline run shares between its stages.
struct RunContext {
    let outputDirectory: URL
    let tag: String
    let dataset: CommentDataset
    /// The comments, tokenized on demand by each model's own tokenizer.
    let corpus: TokenizedCorpus
    let folds: [FoldSplit]
    let foldReport: FoldReport
    let resume: Bool
    /// Where the runs go (a file store or a tracking server) and the experiment they belong to.
    let tracking: any TrackingStore
    let experimentID: String
    /// The job's own run: every fold and stage run is nested under it, and it holds the summaries
    /// and the report as artifacts.
    let jobRun: any TrackingRun
    /// Who ran the job (`--author_name`): the runs' `mlflow.user` and the provenance.
    let author: String
    /// Parameters every MLflow run of this pipeline records (strings, for MLflow only: the stages read
    /// the typed settings below).
    let parameters: [String: String]
    /// The data file the comments came from.
    let dataURL: URL
    /// Tokens per comment the models are trained and saved with (`--max_length`).
    let maxLength: Int
    var logger: Logger

    var checkpointDirectory: URL { outputDirectory.appendingPathComponent("checkpoints") }

    /// The MLflow run nested under the job's run, named `name`; a resumed job continues the run whose
    /// id `runFile` holds rather than starting a second one.
    func nestedRun(name: String, tags: [String: String], runFile: URL) throws -> any TrackingRun {
        if resume, let runID = try? String(contentsOf: runFile, encoding: .utf8),
           let run = try? tracking.resumeRun(experimentID: experimentID, runID: runID) {
            return run
        }
        let run = try tracking.startRun(experimentID: experimentID, name: name, tags: tags, parentRunID: jobRun.runID)
        try run.logParams(parameters)
        try AtomicFile.write(Data(run.runID.utf8), to: runFile)
        return run
    }
}

/// The outcome of one fold, saved as JSON when the fold completes so a resumed run skips it.
struct FoldOutcome: Codable, Sendable {
    var fold: Int
    var trainSize: Int
    var validationSize: Int
    var validationPositives: Int
    var duplicateGroupsKeptTogether: Int
    var bestEpoch: Int
    var epochsRun: Int
    var stoppedEarly: Bool
    /// The best row of the seed's threshold sweep (0.30…0.60).
    var sweepBest: MetricsRow
    /// The best cut over all distinct probabilities.
    var bestCut: MetricsRow
    var seconds: Double
    var history: [EpochRecord]
}

struct BaselineOutcome {
    var folds: [FoldOutcome]
    var bestFold: Int
    /// The best fold's model, with its threshold: the teacher of the later stages.
    var teacher: Classifier
    var teacherDirectory: URL
    /// The best fold's validation rows: the held-out data every later stage is evaluated on.
    var heldOut: [Int]
}

/// Stage 1: stratified k-fold training of the teacher; the best fold's model is kept.
struct BaselineStage {
    let settings: TrainingSettings
    /// Makes the untrained model of a fold (a preset, or the weights of `--model_path`).
    let makeModel: () throws -> Classifier

    func run(_ context: RunContext) throws -> BaselineOutcome {
        let logger = context.logger
        let directory = context.checkpointDirectory.appendingPathComponent("baseline")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let teacherDirectory = context.outputDirectory.appendingPathComponent("best_model_\(context.tag)")
        let labels = context.dataset.labels
        var outcomes: [FoldOutcome] = []
        // The best fold's model when this run trained it (a resumed run's earlier folds are on disk only).
        var bestTrained: (fold: Int, classifier: Classifier)?
        for (fold, split) in context.folds.enumerated() {
            let doneFile = directory.appendingPathComponent("fold-\(fold + 1).json")
            if context.resume, let data = try? Data(contentsOf: doneFile),
               let done = try? JSONDecoder().decode(FoldOutcome.self, from: data) {
                logger.info("fold \(fold + 1)/\(context.folds.count): already complete (macro-F1 \(String(format: "%.4f", done.sweepBest.macroF1)))")
                outcomes.append(done)
                continue
            }
            let started = Date()
            let classifier = try makeModel()
            let label = "baseline fold \(fold + 1)/\(context.folds.count)"
            let run = try mlflowRun(context, name: "baseline-fold-\(fold + 1)", directory: directory, fold: fold)
            let trainer = Trainer(settings: settings, logger: logger)
            let result = try trainer.train(classifier, sequences: context.corpus.sequences(for: classifier), labels: labels, train: split.train,
                                           validation: split.validation, label: label,
                                           checkpoint: directory.appendingPathComponent("fold-\(fold + 1).checkpoint.safetensors"),
                                           resume: context.resume, onEpoch: { record in
                var metrics = ["train_loss": record.trainLoss, "val_macro_f1": record.validationMacroF1,
                               "val_threshold": record.validationThreshold, "tokens_per_second": record.tokensPerSecond]
                if let auc = record.validationRocAUC { metrics["val_roc_auc"] = auc }
                try run.logMetrics(metrics, step: record.epoch)
            })
            let validationLabels = split.validation.map { labels[$0] }
            let search = ThresholdSearch.search(probabilities: result.bestProbabilities, labels: validationLabels)
            let report = context.foldReport.folds[fold]
            let outcome = FoldOutcome(fold: fold + 1, trainSize: split.train.count, validationSize: split.validation.count,
                                      validationPositives: validationLabels.reduce(0, +),
                                      duplicateGroupsKeptTogether: report.duplicateGroups,
                                      bestEpoch: result.bestEpoch, epochsRun: result.history.count, stoppedEarly: result.stoppedEarly,
                                      sweepBest: MetricsRow(search.bestOfSweep), bestCut: MetricsRow(search.bestCut),
                                      seconds: Date().timeIntervalSince(started), history: result.history)
            // The best fold so far becomes the teacher folder before the fold is marked complete, so a
            // run interrupted in between redoes the fold rather than losing its model.
            let bestSoFar = outcomes.map(\.sweepBest.macroF1).max() ?? -1
            if outcome.sweepBest.macroF1 > bestSoFar {
                classifier.threshold = outcome.sweepBest.threshold
                try saveTeacher(classifier, to: teacherDirectory, context: context, fold: fold + 1)
                bestTrained = (fold + 1, classifier)
            }
            try run.logMetrics(outcome.sweepBest.mlflowMetrics.mapKeys { "best_" + $0 }, step: result.bestEpoch)
            try run.finish()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(outcome), to: doneFile)
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("fold-\(fold + 1).checkpoint.safetensors"))
            logger.info("fold \(fold + 1)/\(context.folds.count): macro-F1 \(String(format: "%.4f", outcome.sweepBest.macroF1)) at threshold \(String(format: "%.2f", outcome.sweepBest.threshold)), best epoch \(result.bestEpoch), \(String(format: "%.0f", outcome.seconds)) s")
            outcomes.append(outcome)
        }
        let bestIndex = outcomes.indices.max { outcomes[$0].sweepBest.macroF1 < outcomes[$1].sweepBest.macroF1 }!
        try writeFoldSummary(outcomes, context: context)
        try writeBestMetrics(outcomes, best: bestIndex, context: context)
        try adoptTeacherIfMissing(at: teacherDirectory, bestFold: bestIndex + 1, context: context)
        // The teacher in memory is the one just saved; it is read back only when an earlier run trained it.
        let teacher = try bestTrained.flatMap { $0.fold == bestIndex + 1 ? $0.classifier : nil }
            ?? Classifier.load(from: teacherDirectory, logger: logger)
        return BaselineOutcome(folds: outcomes, bestFold: bestIndex + 1, teacher: teacher, teacherDirectory: teacherDirectory,
                               heldOut: context.folds[bestIndex].validation)
    }

    /// A resumed run whose folds were all completed under another `--pipeline` (another tag) finds the
    /// teacher in that run's `best_model_<tag>/` folder: the one whose `sankshep.json` names the baseline
    /// stage and this best fold. It is copied under this run's tag, so the folds are reused, not retrained.
    private func adoptTeacherIfMissing(at directory: URL, bestFold: Int, context: RunContext) throws {
        let files = FileManager.default
        guard !files.fileExists(atPath: directory.appendingPathComponent("config.json").path) else { return }
        let candidates = (try? files.contentsOfDirectory(at: context.outputDirectory, includingPropertiesForKeys: nil)) ?? []
        let earlier = candidates.filter { folder in
            guard folder.lastPathComponent.hasPrefix("best_model_"), folder.standardizedFileURL != directory.standardizedFileURL,
                  let settings = SankshepSettings.read(from: folder) else { return false }
            return settings.extra["stage"] == "baseline" && settings.extra["fold"] == String(bestFold)
        }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        guard let source = earlier.first else {
            throw TrainingError("\(directory.path): the teacher folder is missing although every baseline fold is complete, and no other best_model_* folder in \(context.outputDirectory.path) holds fold \(bestFold); run without --resume (or in a new --output_dir) to train the baseline again")
        }
        context.logger.info("baseline: teacher of fold \(bestFold) taken from \(source.lastPathComponent)/ (a completed run under another tag)")
        // Copied beside, then renamed: an interrupted copy never passes for a teacher folder.
        let partial = directory.deletingLastPathComponent().appendingPathComponent(".\(directory.lastPathComponent).partial-\(UUID().uuidString)")
        try files.copyItem(at: source, to: partial)
        if files.fileExists(atPath: directory.path) { try files.removeItem(at: directory) }
        try files.moveItem(at: partial, to: directory)
        try AtomicFile.copy(from: directory.appendingPathComponent("model.safetensors"),
                            to: context.outputDirectory.appendingPathComponent("best_model_\(context.tag).safetensors"))
    }

    private func saveTeacher(_ classifier: Classifier, to directory: URL, context: RunContext, fold: Int) throws {
        classifier.maxLength = context.maxLength
        try classifier.save(to: directory, extra: ["stage": "baseline", "fold": String(fold)])
        // The seed framework's name for the best model's weights, beside its folder.
        try AtomicFile.copy(from: directory.appendingPathComponent("model.safetensors"),
                            to: context.outputDirectory.appendingPathComponent("best_model_\(context.tag).safetensors"))
    }

    private func mlflowRun(_ context: RunContext, name: String, directory: URL, fold: Int) throws -> any TrackingRun {
        // A resumed fold continues its MLflow run rather than starting a second one.
        try context.nestedRun(name: name, tags: ["sankshep.stage": "baseline", "sankshep.fold": String(fold + 1), "sankshep.tag": context.tag],
                              runFile: directory.appendingPathComponent("fold-\(fold + 1).mlflow-run"))
    }

    private func writeFoldSummary(_ outcomes: [FoldOutcome], context: RunContext) throws {
        let header = ["fold", "train_size", "validation_size", "validation_positives", "duplicate_groups_kept_together",
                      "best_epoch", "epochs_run", "stopped_early"] + MetricsRow.csvHeader
            + ["best_cut_threshold", "best_cut_macro_f1", "seconds"]
        let rows = outcomes.map { outcome in
            [String(outcome.fold), String(outcome.trainSize), String(outcome.validationSize), String(outcome.validationPositives),
             String(outcome.duplicateGroupsKeptTogether), String(outcome.bestEpoch), String(outcome.epochsRun),
             String(outcome.stoppedEarly)] + outcome.sweepBest.csvFields
            + [CSVOutput.number(outcome.bestCut.threshold), CSVOutput.number(outcome.bestCut.macroF1),
               CSVOutput.number(outcome.seconds, decimals: 1)]
        }
        try CSVOutput.write(header: header, rows: rows,
                            to: context.outputDirectory.appendingPathComponent("fold_summary_\(context.tag).csv"))
    }

    private func writeBestMetrics(_ outcomes: [FoldOutcome], best: Int, context: RunContext) throws {
        func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }
        func std(_ values: [Double]) -> Double {
            let m = mean(values)
            return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(values.count, 1))).squareRoot()
        }
        let rows = outcomes.map(\.sweepBest)
        func column(_ key: KeyPath<MetricsRow, Double>) -> [Double] { rows.map { $0[keyPath: key] } }
        let keys: [(String, KeyPath<MetricsRow, Double>)] = [
            ("accuracy", \.accuracy), ("precision", \.precision), ("recall", \.recall), ("f1", \.f1), ("macro_f1", \.macroF1),
            ("negative_precision", \.negativePrecision), ("negative_recall", \.negativeRecall), ("negative_f1", \.negativeF1),
            ("threshold", \.threshold)]
        var table = keys.map { name, key in
            [name, CSVOutput.number(rows[best][keyPath: key]), CSVOutput.number(mean(column(key))), CSVOutput.number(std(column(key)))]
        }
        let aucs = rows.compactMap(\.rocAUC)
        table.append(["roc_auc", CSVOutput.number(rows[best].rocAUC), CSVOutput.number(aucs.isEmpty ? nil : mean(aucs)),
                      CSVOutput.number(aucs.isEmpty ? nil : std(aucs))])
        try CSVOutput.write(header: ["metric", "best_fold_\(best + 1)", "mean", "std"], rows: table,
                            to: context.outputDirectory.appendingPathComponent("best_metrics_\(context.tag).csv"))
    }
}

extension Dictionary {
    func mapKeys<T: Hashable>(_ transform: (Key) -> T) -> [T: Value] {
        Dictionary<T, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
