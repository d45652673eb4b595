import ArgumentParser
import Foundation

// The options of `sankshep run`, named exactly as the seed framework's CLI names them so its users
// feel at home (`--num_folds`, `--max_length`, …). Each group is an `@OptionGroup` shared by the
// commands that need it; every impossible value is refused in `validate()` with one line.

/// A choice among `T`'s values, refused in one line naming them all (ArgumentParser lists six or more
/// choices one per line).
func oneLineChoice<T: RawRepresentable & CaseIterable>(_ text: String) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw ValidationError("expected one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

extension StratificationType: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}
extension PipelineName: ExpressibleByArgument {}
extension LossType: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}
extension BadRowPolicy: ExpressibleByArgument {}

struct DataOptions: ParsableArguments {
    @Option(name: [.customLong("dataset_path"), .customLong("data_path")],
            help: "CSV file of comments and labels (default: the bundled data/HateSpeech.csv); --data_path is the same option.")
    var dataPath: String?

    @Option(name: .customLong("text_column"), help: "Column holding the comment text.")
    var textColumn = "Comments"

    @Option(name: .customLong("label_column"), help: "Column holding the label (0/1, true/false, or named with --positive_label).")
    var labelColumn = "HateSpeech"

    @Option(name: .customLong("positive_label"), help: "Label value that means hate speech when labels are words (e.g. hate); every other value is negative.")
    var positiveLabel: String?

    @Option(name: .customLong("on_bad_rows"), help: "What to do with malformed rows: fail (list them and stop) or skip (warn and drop them).")
    var onBadRows: BadRowPolicy = .fail

    @Option(name: .customLong("data_fraction"), help: "Fraction of the data to use, stratified and seeded (0 < f ≤ 1).")
    var dataFraction: Double = 1.0

    @Option(name: .customLong("max_length"), help: "Maximum tokens per comment, [CLS] and [SEP] included (default: 128; eval: the model's saved max_length).")
    var givenMaxLength: Int?

    static let defaultMaxLength = 128
    /// `--max_length`, or its default when it was not given.
    var maxLength: Int { givenMaxLength ?? Self.defaultMaxLength }

    /// How the CSV is read; `seed` draws the `--data_fraction` subsample.
    func csvOptions(seed: Int) -> CommentCSVOptions {
        var options = CommentCSVOptions()
        options.textColumn = textColumn
        options.labelColumn = labelColumn
        options.labels = positiveLabel.map { .named(positive: $0, negative: nil) } ?? .binary
        options.onBadRows = onBadRows
        options.dataFraction = dataFraction
        options.seed = UInt64(truncatingIfNeeded: seed)
        return options
    }

    func validate() throws {
        guard dataFraction > 0, dataFraction <= 1 else {
            throw ValidationError("--data_fraction must be in (0, 1], got \(dataFraction)")
        }
        guard maxLength >= 3 else { throw ValidationError("--max_length must be at least 3, got \(maxLength)") }
    }
}

struct TrainingOptions: ParsableArguments {
    @Option(help: "Batch size (default: 32; without --model_path, the preset's own, 32 for teacher-small).")
    var batch: Int?

    @Option(help: "Peak learning rate (default: 2e-5 with --model_path; a built-in preset's own otherwise, 1e-3 for teacher-small).")
    var lr: Double?

    @Option(help: "Maximum epochs per fold, early stopping may end sooner (default: 15 with --model_path; a built-in preset's own otherwise, 3 for teacher-small).")
    var epochs: Int?

    @Option(name: .customLong("num_folds"), help: "Number of cross-validation folds.")
    var numFolds = 5

    @Option(help: "Seed for folds, shuffling, dropout and initialisation.")
    var seed = 42

    @Option(name: .customLong("stratification_type"), help: "Fold stratification: binary or none.")
    var stratificationType: StratificationType = .binary

    @Option(help: "Dropout probability of the classification head (and the encoder of a preset).")
    var dropout: Double = 0.1

    @Option(name: .customLong("weight_decay"), help: "AdamW weight decay (not applied to biases and LayerNorm).")
    var weightDecay: Double = 0.01

    @Option(name: .customLong("warmup_ratio"), help: "Fraction of the steps spent warming the learning rate up.")
    var warmupRatio: Double = 0.1

    @Option(name: .customLong("gradient_clip_norm"), help: "Clip the global gradient norm to this value (0 disables).")
    var gradientClipNorm: Double = 1.0

    @Option(name: .customLong("early_stopping_patience"), help: "Epochs without a better validation macro-F1 before a fold stops.")
    var earlyStoppingPatience = 5

    @Flag(name: .customLong("freeze_base"), help: "Train only the classification head; the encoder stays frozen.")
    var freezeBase = false

    @Flag(name: .customLong("use_class_weights"), help: "Weight the positive class by negatives/positives in BCE (pos_weight).")
    var useClassWeights = false

    @Option(name: .customLong("scheduler_type"), help: "Learning-rate schedule after warm-up: linear or cosine.")
    var schedulerType: LearningRateSchedule.Kind = .linear

    @Option(name: .customLong("loss_type"), help: "Loss: bce (binary cross-entropy on logits) or focal.")
    var lossType: LossType = .bce

    @Option(name: .customLong("focal_gamma"), help: "Focal loss focusing parameter γ.")
    var focalGamma: Double = 2.0

    @Option(name: .customLong("focal_alpha"), help: "Focal loss weight α of the positive class.")
    var focalAlpha: Double = 0.25

    @Option(name: .customLong("pooling_type"), help: "Pooling of the encoder output for the head: cls, mean or max.")
    var poolingType: Pooling = .cls

    @Option(help: "Threads for the compute kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let batch, batch <= 0 { throw ValidationError("--batch must be positive, got \(batch)") }
        if let lr, !(lr > 0) { throw ValidationError("--lr must be positive, got \(lr)") }
        if let epochs, epochs <= 0 { throw ValidationError("--epochs must be positive, got \(epochs)") }
        guard numFolds >= 2 else { throw ValidationError("--num_folds must be at least 2, got \(numFolds)") }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight_decay must be ≥ 0, got \(weightDecay)") }
        guard warmupRatio >= 0, warmupRatio <= 1 else { throw ValidationError("--warmup_ratio must be in [0, 1], got \(warmupRatio)") }
        guard gradientClipNorm >= 0 else { throw ValidationError("--gradient_clip_norm must be ≥ 0, got \(gradientClipNorm)") }
        guard earlyStoppingPatience >= 1 else { throw ValidationError("--early_stopping_patience must be at least 1, got \(earlyStoppingPatience)") }
        guard focalGamma >= 0 else { throw ValidationError("--focal_gamma must be ≥ 0, got \(focalGamma)") }
        guard focalAlpha > 0, focalAlpha < 1 else { throw ValidationError("--focal_alpha must be in (0, 1), got \(focalAlpha)") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
    }
}

struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model_path"), help: "Hugging Face directory of the teacher (BERT or DistilBERT); default: the built-in small teacher preset.")
    var modelPath: String?

    @Option(name: .customLong("teacher_preset"), help: "Built-in teacher preset when no --model_path is given.")
    var teacherPreset = "teacher-small"

    @Flag(name: .customLong("skip_baseline"), help: "Train no baseline: the teacher is --teacher_checkpoint. The folds are still made; the held-out rows are fold 1's validation split.")
    var skipBaseline = false

    @Option(name: .customLong("teacher_checkpoint"), help: "The teacher with --skip_baseline: a model folder, or a weights file (a seed best_model_*.pt, a .safetensors) whose architecture and tokenizer are --model_path's (or the teacher preset's).")
    var teacherCheckpoint: String?

    func validate() throws {
        if skipBaseline, teacherCheckpoint == nil {
            throw ValidationError("--skip_baseline needs --teacher_checkpoint FILE: the teacher that replaces the baseline")
        }
        if let teacherCheckpoint, !skipBaseline {
            throw ValidationError("--teacher_checkpoint \(teacherCheckpoint) is used with --skip_baseline; without it the baseline trains its own teacher")
        }
        if let teacherCheckpoint, !FileManager.default.fileExists(atPath: teacherCheckpoint) {
            throw ValidationError("--teacher_checkpoint \(teacherCheckpoint): no such file or folder")
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Option(name: .customLong("output_dir"), help: "Folder for models, summaries and the MLflow store.")
    var outputDir = "./outputs"

    @Option(help: "Tag in artifact names (best_model_<tag>.safetensors); default: the pipeline name.")
    var tag: String?

    @Flag(help: "Continue an interrupted run from its last checkpoint in --output_dir.")
    var resume = false

    @Option(name: .customLong("cache_dir"), help: "Folder of the tokenized-data cache: a file per data file, CSV options, tokenizer and --max_length, so a rerun skips tokenizing.")
    var cacheDir = "./cache"

    @Flag(name: .customLong("save_huggingface"), help: "Accepted for the seed's command lines: the final model folder is always a Hugging Face folder.")
    var saveHuggingFace = false
}
