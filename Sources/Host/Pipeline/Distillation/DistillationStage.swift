import Foundation
import Logging

/// Stage 2: knowledge distillation. A student (a preset, a Hugging Face folder, or the teacher's own
/// layers) is trained on the baseline's best fold's training rows, validated on the held-out rows,
/// with loss = α·T²·KL(σ(z_t/T) ‖ σ(z_s/T)) + (1−α)·BCE(z_s, y), plus hidden-state and attention
/// terms for `hidden`, `attention` and `multi_level`. The teacher runs once per training row, before
/// training (`TeacherCache`); α = 0 is plain training of the same student.
struct DistillationStage: CompressionStage {
    let stage: DistillStage

    /// What a distillation run leaves besides the student: the teacher cache (with its forward counts).
    struct Outcome {
        let student: Classifier
        let training: TrainingResult
        let cache: TeacherCache
        let mapping: LayerMapping
    }

    func run(_ input: StageInput) throws -> DeployableModel {
        let context = input.context
        let logger = context.logger
        let student = try StudentFactory.make(stage.student, teacher: input.teacher, headHidden: stage.studentHiddenSize,
                                              seed: input.settings.seed, logger: logger)
        let split = context.folds[input.baseline.bestFold - 1]
        let settings = studentSettings(input.settings)
        let directory = context.checkpointDirectory.appendingPathComponent("distill")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let run = try context.tracking.startRun(experimentID: context.experimentID, name: "distill-training",
                                                tags: ["sankshep.stage": input.label, "sankshep.tag": context.tag],
                                                parentRunID: context.jobRun.runID)
        try run.logParams(context.parameters.merging(["kd_alpha": String(stage.alpha), "kd_temperature": String(stage.temperature),
                                                      "kd_method": stage.method.rawValue, "student": student.summary,
                                                      "student_lr": String(settings.learningRate), "student_epochs": String(settings.epochs)]) { $1 })
        let outcome = try distill(teacher: input.teacher, student: student, corpus: context.corpus,
                                  labels: context.dataset.labels, train: split.train, validation: input.baseline.heldOut,
                                  settings: settings,
                                  checkpoint: directory.appendingPathComponent("student.checkpoint.safetensors"),
                                  resume: context.resume, logger: logger, onEpoch: { record in
            var metrics = ["train_loss": record.trainLoss, "val_macro_f1": record.validationMacroF1, "val_threshold": record.validationThreshold]
            if let auc = record.validationRocAUC { metrics["val_roc_auc"] = auc }
            try run.logMetrics(metrics, step: record.epoch)
        })
        try run.finish()
        logger.info("distill: student \(student.summary), \(student.parameterCount) parameters; best epoch \(outcome.training.bestEpoch), validation macro-F1 \(String(format: "%.4f", outcome.training.history.map(\.validationMacroF1).max() ?? 0))")
        return outcome.student
    }

    /// The run's settings, with a preset student's own learning rate, epochs and batch size: the
    /// run's values were resolved against the teacher's preset.
    func studentSettings(_ run: TrainingSettings) -> TrainingSettings {
        var settings = run
        if case .preset(let name) = stage.student, let preset = ModelPreset.named(name) {
            settings.learningRate = preset.learningRate
            settings.epochs = preset.epochs
            settings.batchSize = preset.batchSize
        }
        return settings
    }

    /// Trains `student` from `teacher` on the `train` rows (validation on `validation`) and returns it
    /// with the weights of its best validation epoch.
    ///
    /// - Parameter corpus: the comments; the teacher reads its tokenizer's ids, the student its own
    ///   (the same ids when they share a tokenizer).
    func distill(teacher: Classifier, student: Classifier, corpus: TokenizedCorpus, labels: [Int],
                 train: [Int], validation: [Int], settings: TrainingSettings, checkpoint: URL?, resume: Bool,
                 logger: Logger = Logger(label: "sankshep.distill"), onEpoch: ((EpochRecord) throws -> Void)? = nil) throws -> Outcome {
        let shared = StudentFactory.sameTokenizer(teacher.tokenizer, student.tokenizer)
        let usesHidden = stage.method == .hidden || stage.method == .multi_level
        let usesAttention = stage.method == .attention || stage.method == .multi_level
        if usesAttention && !shared {
            throw DistillationError("--kd_method \(stage.method.rawValue): attention distillation needs the teacher's tokenizer, but the student's differs (\(student.tokenizer.vocabularySize) vs \(teacher.tokenizer.vocabularySize) tokens or other normalisation); use --kd_method logit or hidden, or --student_init teacher")
        }
        let teacherSequences = try corpus.sequences(for: teacher)
        let studentSequences = try corpus.sequences(for: student)
        if !shared { logger.info("distill: the student tokenizes differently from the teacher; hidden states are compared as mean-pooled vectors") }

        let mapping = LayerMapping.uniform(studentLayers: student.config.numLayers, teacherLayers: teacher.config.numLayers)
        let outputs = TeacherOutputs(hiddenStates: usesHidden ? mapping.hiddenStates.map(\.teacher) : [],
                                     pooledHiddenStates: !shared,
                                     attentionLayers: usesAttention ? mapping.attentionLayers.map(\.teacher) : [])
        let started = Date()
        let cache = try TeacherCache(teacher: teacher, sequences: teacherSequences, rows: train, outputs: outputs,
                                     batchSize: max(settings.batchSize, 64))
        logger.info("distill: teacher outputs cached for \(cache.count) training rows in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")

        let projection = usesHidden
            ? HiddenProjection(count: mapping.hiddenStates.count, studentWidth: student.config.hiddenSize, teacherWidth: teacher.config.hiddenSize,
                               learningRate: settings.learningRate, weightDecay: settings.weightDecay, seed: UInt64(settings.seed))
            : nil
        let trainer = Trainer(settings: settings, logger: logger)
        let lossSettings = DistillationLossSettings(alpha: Float(stage.alpha), temperature: Float(stage.temperature), softLoss: stage.softLoss,
                                                    hiddenWeight: usesHidden ? Float(stage.hiddenLossWeight) : 0,
                                                    attentionWeight: usesAttention ? Float(stage.attentionLossWeight) : 0)
        let objective = DistillationObjective(settings: lossSettings, student: student.network, cache: cache, mapping: mapping,
                                              hard: trainer.defaultObjective(labels: labels, train: train),
                                              studentSequences: studentSequences, projection: projection)
        // The projection follows the student's learning-rate schedule, one step after each of the student's.
        let stepsPerEpoch = (train.count + settings.batchSize - 1) / settings.batchSize
        let schedule = try LearningRateSchedule(kind: settings.scheduler, warmupRatio: settings.warmupRatio,
                                                totalSteps: max(stepsPerEpoch * settings.epochs, 1))
        let step = StepCounter()
        let hooks = TrainingHooks(beforeStep: { globalStep, _ in step.value = globalStep },
                                  afterStep: { objective.stepProjection(learningRate: schedule.learningRate(base: settings.learningRate, atStep: step.value - 1)) })
        let result = try trainer.train(student, sequences: studentSequences, labels: labels, train: train, validation: validation,
                                       label: "distill (\(stage.method.rawValue), α \(stage.alpha), T \(stage.temperature))",
                                       checkpoint: checkpoint, resume: resume, objective: objective.asTrainingObjective, hooks: hooks,
                                       onEpoch: onEpoch)
        return Outcome(student: student, training: result, cache: cache, mapping: mapping)
    }
}

/// The optimizer step the hooks are at (a box the two hook closures share).
private final class StepCounter { var value = 0 }
