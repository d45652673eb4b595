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
extension KDMethod: ExpressibleByArgument {}
extension PruneScheduleName: ExpressibleByArgument {}
extension PruneLayers: ExpressibleByArgument {}
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

struct DistillationOptions: ParsableArguments {
    @Option(name: .customLong("student_path"), help: "Hugging Face folder of the student (e.g. a local distilbert-base-multilingual-cased); default: the built-in student preset (the seed's default is that hub model, which needs downloading).")
    var studentPath: String?

    @Option(name: .customLong("student_preset"), help: "Built-in student preset when no --student_path is given.")
    var studentPreset = StageOptions.defaultStudentPreset

    @Option(name: .customLong("student_init"), help: "teacher: build the student from the teacher's own layers (see --student_layers), sharing its tokenizer.")
    var studentInit: String?

    @Option(name: .customLong("student_layers"), help: "Teacher layers the student keeps with --student_init teacher, comma-separated (default: every other layer).")
    var studentLayers: String?

    @Option(name: .customLong("student_hidden_size"), help: "Width of the student's MLP head when the seed framework's head is used.")
    var studentHiddenSize = 256

    @Option(name: .customLong("kd_alpha"), help: "Weight of the soft (teacher) loss: α·T²·soft + (1−α)·hard.")
    var kdAlpha = 0.7

    @Option(name: .customLong("kd_temperature"), help: "Distillation temperature T.")
    var kdTemperature = 4.0

    @Option(name: .customLong("kd_method"), help: "What is distilled: logit, hidden, attention or multi_level.")
    var kdMethod: KDMethod = .logit

    @Option(name: .customLong("hidden_loss_weight"), help: "Weight of the hidden-state loss (hidden, multi_level).")
    var hiddenLossWeight = 0.3

    @Option(name: .customLong("attention_loss_weight"), help: "Weight of the attention loss (attention, multi_level).")
    var attentionLossWeight = 0.2

    // The seed checks these ranges whatever the pipeline; so does Sankshep.
    func validate() throws {
        guard kdAlpha.isFinite, (0...1).contains(kdAlpha) else { throw ValidationError("--kd_alpha must be in [0, 1], got \(kdAlpha)") }
        guard kdTemperature.isFinite, kdTemperature > 0 else { throw ValidationError("--kd_temperature must be positive, got \(kdTemperature)") }
        guard hiddenLossWeight.isFinite, hiddenLossWeight >= 0 else { throw ValidationError("--hidden_loss_weight must be ≥ 0, got \(hiddenLossWeight)") }
        guard attentionLossWeight.isFinite, attentionLossWeight >= 0 else { throw ValidationError("--attention_loss_weight must be ≥ 0, got \(attentionLossWeight)") }
        guard studentHiddenSize > 0 else { throw ValidationError("--student_hidden_size must be positive, got \(studentHiddenSize)") }
    }
}

struct PruningOptions: ParsableArguments {
    @Option(name: .customLong("prune_method"), help: "Pruning method: magnitude, wanda, gradual, structured (whole attention heads and FFN neurons removed, per --prune_layers: attention → heads, ffn → FFN neurons, all or encoder → both), or any pruner a plugin registers.")
    var pruneMethod = "magnitude"

    @Option(name: .customLong("prune_sparsity"), help: "Fraction of the pruned layers' weights to remove, in [0, 1).")
    var pruneSparsity = 0.5

    // The four schedule options are optionals so that a schedule method's own `--prune_option` can
    // stand when they are not given; their defaults (the seed's) are `scheduleWindow`'s.
    @Option(name: .customLong("prune_schedule"), help: "Schedule of gradual pruning: cubic, linear or exponential (default: cubic). One-shot pruners ignore it, as the schedule options below.")
    var pruneSchedule: PruneScheduleName?

    @Option(name: .customLong("prune_start_epoch"), help: "Gradual pruning: fine-tuning epoch, from 0, where the schedule starts (default: 0).")
    var pruneStartEpoch: Int?

    @Option(name: .customLong("prune_end_epoch"), help: "Gradual pruning: epoch by which the final sparsity is reached (default: 10); at or past --fine_tune_epochs it is reached at the start of the last fine-tuning epoch.")
    var pruneEndEpoch: Int?

    @Option(name: .customLong("prune_frequency"), help: "Gradual pruning: optimizer steps between mask updates (default: 100).")
    var pruneFrequency: Int?

    @Option(name: .customLong("prune_layers"), help: "What is pruned: all (every linear layer but the final classifier row, and the word embeddings), linear (the same without the embeddings), encoder (the encoder's linear layers), attention, ffn, or embeddings (the word embeddings alone).", transform: oneLineChoice)
    var pruneLayers: PruneLayers = .all

    @Option(name: .customLong("calib_samples"), help: "Calibration comments for methods that need activation statistics (wanda).")
    var calibSamples = 512

    @Flag(name: .customLong("fine_tune_after_prune"), inversion: .prefixedNo, help: "Heal the pruned model by fine-tuning with the mask enforced.")
    var fineTuneAfterPrune = true

    @Option(name: .customLong("fine_tune_epochs"), help: "Epochs of healing after pruning.")
    var fineTuneEpochs = 3

    @Flag(name: .customLong("trim_vocab"), help: "Trim the vocabulary before pruning: keep only the embedding rows of the tokens the training comments use (and the special tokens); the tokenizer files are rewritten with the new ids.")
    var trimVocab = false

    @Option(name: .customLong("trim_vocab_top_k"), help: "With --trim_vocab: also keep the K most frequent tokens of --trim_vocab_corpus.")
    var trimVocabTopK = 0

    @Option(name: .customLong("trim_vocab_corpus"), help: "With --trim_vocab_top_k: a CSV of comments (Comments column) whose most frequent tokens are kept too.")
    var trimVocabCorpus: String?

    @Option(name: .customLong("prune_option"), help: ArgumentHelp("A further option of the pruning method, name=value; repeatable. Any method also takes scope=layer|global and structure=none|ffn|heads|both (whole FFN neurons, attention heads, or both removed, with a structured pruner such as magnitude).", valueName: "name=value"))
    var pruneOptions: [String] = []

    /// The seed's defaults of the schedule window: from epoch 0 to epoch 10, masks every 100 steps.
    static let seedEndEpoch = 10
    var scheduleWindow: (startEpoch: Int, endEpoch: Int, frequency: Int) {
        (pruneStartEpoch ?? 0, pruneEndEpoch ?? Self.seedEndEpoch, pruneFrequency ?? PruneStage.defaultFrequency)
    }

    /// The schedule options given on the command line, which a one-shot pruner ignores.
    var givenScheduleOptions: [String] {
        [("--prune_schedule", pruneSchedule != nil), ("--prune_start_epoch", pruneStartEpoch != nil),
         ("--prune_end_epoch", pruneEndEpoch != nil), ("--prune_frequency", pruneFrequency != nil)].filter(\.1).map(\.0)
    }

    func validate() throws {
        guard pruneSparsity.isFinite, pruneSparsity >= 0, pruneSparsity < 1 else {
            throw ValidationError("--prune_sparsity must be in [0, 1), got \(pruneSparsity)")
        }
        let window = scheduleWindow
        guard window.startEpoch >= 0 else { throw ValidationError("--prune_start_epoch must be ≥ 0, got \(window.startEpoch)") }
        guard window.endEpoch >= window.startEpoch else {
            throw ValidationError("--prune_end_epoch must be ≥ --prune_start_epoch (\(window.startEpoch)), got \(window.endEpoch)")
        }
        guard window.frequency > 0 else { throw ValidationError("--prune_frequency must be positive, got \(window.frequency)") }
        guard calibSamples > 0 else { throw ValidationError("--calib_samples must be positive, got \(calibSamples)") }
        guard fineTuneEpochs >= (fineTuneAfterPrune ? 1 : 0) else {
            throw ValidationError("--fine_tune_epochs must be at least \(fineTuneAfterPrune ? 1 : 0), got \(fineTuneEpochs)")
        }
    }
}

/// What `--quant_dtype` names: the number format of the quantized weights.
enum QuantDType: String, CaseIterable, ExpressibleByArgument, Sendable {
    case int8, int4, fp16

    /// The built-in quantizers' formats.
    static let ofMethod: [String: QuantDType] = ["dynamic": .int8, "static": .int8, "int4": .int4, "fp16": .fp16]

    /// The method `--quant_dtype` alone chooses.
    var method: String {
        switch self {
        case .int8: "dynamic"
        case .int4: "int4"
        case .fp16: "fp16"
        }
    }
}

struct QuantizationOptions: ParsableArguments {
    @Option(name: .customLong("quant_method"), help: "Quantizer: dynamic, static, int4, fp16, or any quantizer a plugin registers (default: dynamic, or the one --quant_dtype names). qat (quantization-aware training) is not available yet.")
    var quantMethod: String?

    @Option(name: .customLong("quant_dtype"), help: "Weight format: int8 (dynamic, static), int4 or fp16; must agree with --quant_method, and alone chooses it (int8 → dynamic).")
    var quantDType: QuantDType?

    @Option(name: .customLong("quant_calibration_batches"), help: "Batches of calibration comments for static quantization.")
    var quantCalibrationBatches = 100

    @Option(name: .customLong("quant_option"), help: ArgumentHelp("A further option of the quantizer, name=value; repeatable.", valueName: "name=value"))
    var quantOptions: [String] = []

    /// The quantizer the options name: `--quant_method`, else the one `--quant_dtype` chooses, else dynamic.
    var resolvedMethod: String { quantMethod ?? quantDType?.method ?? "dynamic" }

    func validate() throws {
        if quantMethod == "qat" {
            throw ValidationError("--quant_method qat: quantization-aware training is not available yet; use dynamic, static, int4 or fp16")
        }
        if let quantMethod, let quantDType {
            guard let format = QuantDType.ofMethod[quantMethod] else {
                throw ValidationError("--quant_dtype \(quantDType.rawValue): the plugin quantizer '\(quantMethod)' sets its own format; drop --quant_dtype")
            }
            guard format == quantDType else {
                throw ValidationError("--quant_dtype \(quantDType.rawValue) disagrees with --quant_method \(quantMethod), which quantizes to \(format.rawValue)")
            }
        }
        guard quantCalibrationBatches > 0 else {
            throw ValidationError("--quant_calibration_batches must be positive, got \(quantCalibrationBatches)")
        }
    }
}

extension KDMethod: Codable {}

extension StageOptions {
    /// The seed's `--prune_method structured`.
    static let structuredMethod = "structured"

    /// `--prune_method structured`: whole attention heads and FFN neurons, ranked by magnitude, per
    /// `--prune_layers` (attention → heads, ffn → FFN neurons, all / encoder / linear → both). Only
    /// the encoder's layers are selected, so nothing else is pruned weight by weight.
    mutating func mapStructured() throws {
        let layers = pruneLayers
        let structure: PruningPlan.Structure
        switch pruneLayers {
        case .attention: structure = .heads
        case .ffn: structure = .ffn
        case .all, .encoder, .linear:
            structure = .both
            pruneLayers = .encoder
        case .embeddings:
            throw ValidationFailure("--prune_method structured removes attention heads and FFN neurons; --prune_layers embeddings selects neither")
        }
        if let given = pruneOptions["structure"], given != structure.rawValue {
            throw ValidationFailure("--prune_method structured with --prune_layers \(layers.rawValue) removes structure=\(structure.rawValue); --prune_option structure=\(given) disagrees")
        }
        pruneOptions["structure"] = structure.rawValue
        pruneMethod = "magnitude"
    }
}

/// `name=value` pairs of `--prune_option` / `--quant_option`.
func parseOptionPairs(_ pairs: [String], option: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationFailure("\(option) \(pair): expected name=value")
        }
        result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return result
}

extension StageOptions {
    /// `methods` tells a schedule method, which takes `--prune_schedule` and the epoch window (the
    /// seed's defaults filled in), from a one-shot pruner, which ignores them as the seed does.
    init(distillation: DistillationOptions, pruning: PruningOptions, quantization: QuantizationOptions,
         methods: MethodCatalog) throws {
        self.init()
        kdAlpha = distillation.kdAlpha
        kdTemperature = distillation.kdTemperature
        kdMethod = distillation.kdMethod
        hiddenLossWeight = distillation.hiddenLossWeight
        attentionLossWeight = distillation.attentionLossWeight
        studentPath = distillation.studentPath
        studentPreset = distillation.studentPreset
        if let initFrom = distillation.studentInit {
            guard initFrom == "teacher" else { throw ValidationFailure("--student_init: expected 'teacher', got '\(initFrom)'") }
            studentInitFromTeacher = true
        }
        if let layers = distillation.studentLayers {
            let parsed = layers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                throw ValidationFailure("--student_layers: expected comma-separated layer numbers, got '\(layers)'")
            }
            studentLayers = parsed.map { $0! }
        }
        studentHiddenSize = distillation.studentHiddenSize
        pruneSparsity = pruning.pruneSparsity
        pruneLayers = pruning.pruneLayers
        calibSamples = pruning.calibSamples
        fineTuneAfterPrune = pruning.fineTuneAfterPrune
        fineTuneEpochs = pruning.fineTuneEpochs
        pruneOptions = try parseOptionPairs(pruning.pruneOptions, option: "--prune_option")
        trimVocab = pruning.trimVocab
        trimVocabTopK = pruning.trimVocabTopK
        trimVocabCorpus = pruning.trimVocabCorpus
        pruneMethod = pruning.pruneMethod
        let schemas = methods.methodSchemas
        if pruneMethod == StageOptions.structuredMethod, !schemas.contains(where: { $0.name == pruneMethod }) {
            try mapStructured()
        }
        if schemas.first(where: { $0.name == pruneMethod })?.kind == .schedule {
            pruneSchedule = pruning.pruneSchedule ?? (pruneOptions["schedule"] == nil ? .cubic : nil)
            let window = pruning.scheduleWindow
            pruneStartEpoch = window.startEpoch
            // The seed ramps over the whole fine-tuning whatever its end epoch (10 by default): an end
            // at or past the last fine-tuning epoch reaches the sparsity where that epoch starts.
            pruneEndEpoch = min(window.endEpoch, max(fineTuneEpochs - 1, window.startEpoch))
            pruneFrequency = window.frequency
        }
        quantMethod = quantization.resolvedMethod
        quantCalibrationBatches = quantization.quantCalibrationBatches
        quantOptions = try parseOptionPairs(quantization.quantOptions, option: "--quant_option")
    }
}
