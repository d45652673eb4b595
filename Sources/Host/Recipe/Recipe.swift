import Foundation
import Yams

// A recipe is the list of stages a run performs, in order, each with its options:
//
//     stages:
//       - baseline: {}
//       - distill: {alpha: 0.7, temperature: 4.0}
//       - prune: {method: wanda, sparsity: 0.3}
//       - prune: {method: gradual, sparsity: 0.6, options: {schedule: cubic}}
//       - quantize: {method: int4, options: {group_size: 32}}
//
// `--recipe FILE.yaml` reads one; every `--pipeline` name is a built-in recipe made from the seed
// framework's CLI options (`Recipe.builtIn`). Either way the recipe is validated completely before any
// work starts (`validate(methods:)`), so a typo in the last stage does not cost a trained baseline.
// Every error is one line naming the place (file:line and stage, or the CLI option) and the problem.
// docs/recipes.md is the user-facing description of the format.

/// A recipe that cannot run: one line naming where and what.
struct RecipeError: Error, CustomStringConvertible, Equatable {
    let message: String
    init(_ message: String) {
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
    var description: String { message }
}

// MARK: - Stages

/// Where a distilled student's weights come from.
enum StudentSource: Sendable, Equatable {
    /// A built-in preset, randomly initialised (`student_preset`).
    case preset(String)
    /// A Hugging Face folder (`student_path`).
    case path(String)
    /// The teacher's embeddings and these of its encoder layers, as DistilBERT was made
    /// (`student_init: teacher` with `student_layers`); nil takes every other layer (0, 2, 4, …).
    case teacherLayers([Int]?)
}

/// `distill`: train a student on the teacher's cached outputs (issue 5).
struct DistillStage: Sendable, Equatable {
    /// Weight of the soft (teacher) loss: loss = α·T²·soft + (1−α)·hard.
    var alpha = 0.7
    var temperature = 4.0
    var method: KDMethod = .logit
    var hiddenLossWeight = 0.3
    var attentionLossWeight = 0.2
    var student: StudentSource = .preset(StageOptions.defaultStudentPreset)
    /// Width of the seed head's hidden layer (Linear(H, n) → ReLU → Linear(n, 1)) when that head is used.
    var studentHiddenSize = 256
}

/// `prune`: mask with a pruner or a schedule, heal by fine-tuning, make permanent (issue 4).
struct PruneStage: Sendable, Equatable {
    /// Any registered pruner (`magnitude`, `wanda`, …) or schedule (`gradual`, …).
    var method = "magnitude"
    /// Target fraction of removed weights in the selected layers; a schedule's final sparsity.
    var sparsity = 0.5
    var layers: PruneLayers = .all
    /// Comments run through the model to collect activation statistics (for methods that need them).
    var calibSamples = 512
    var fineTune = true
    var fineTuneEpochs = 3
    /// The method's own options, as strings, checked against the schema it declares.
    var options: [String: String] = [:]
    /// Schedule methods only: the fine-tuning epochs (counted from 0) over which sparsity ramps up,
    /// and how many optimizer steps apart the masks are recomputed. nil takes the default
    /// (`scheduleWindow`).
    var startEpoch: Int?
    var endEpoch: Int?
    var frequency: Int?

    static let defaultFrequency = 100

    /// The schedule window with defaults filled in: from the first epoch, reaching the final sparsity
    /// at the start of the last fine-tuning epoch (which then heals at full sparsity), every 100 steps.
    var scheduleWindow: (startEpoch: Int, endEpoch: Int, frequency: Int) {
        (startEpoch ?? 0, endEpoch ?? max(fineTuneEpochs - 1, 0), frequency ?? Self.defaultFrequency)
    }
}

/// `quantize`: turn the linear layers into quantized layers with a registered quantizer (issue 6).
struct QuantizeStage: Sendable, Equatable {
    /// Any registered quantizer (`dynamic`, `static`, `int4`, `fp16`, …).
    var method = "dynamic"
    /// Batches run to calibrate activation scales (methods that need them).
    var calibrationBatches = 100
    var options: [String: String] = [:]
}

/// `trim_vocab`: keep the embedding rows of the tokens the training comments use (issue 14;
/// Pipeline/Trimming/VocabularyTrimming.swift).
struct TrimVocabStage: Sendable, Equatable {
    /// Also keep the `top_k` most frequent tokens of `corpus` (a CSV with a Comments column).
    var topK = 0
    var corpus: String?
}

enum RecipeStage: Sendable, Equatable {
    /// k-fold training of the teacher; its training options come from the command line.
    case baseline
    case distill(DistillStage)
    case prune(PruneStage)
    case quantize(QuantizeStage)
    case trimVocab(TrimVocabStage)

    var name: String {
        switch self {
        case .baseline: "baseline"
        case .distill: "distill"
        case .prune: "prune"
        case .quantize: "quantize"
        case .trimVocab: "trim_vocab"
        }
    }

    static let names = ["baseline", "distill", "prune", "quantize", "trim_vocab"]
}

// MARK: - The seed framework's CLI options

/// The stage options of `sankshep run` as the seed framework names them (`--kd_alpha`,
/// `--prune_sparsity`, `--quant_method`, …), with its defaults. The CLI fills one of these and
/// `Recipe.builtIn` turns it into the stages of a `--pipeline` name. An optional is "not given":
/// the stage's own default applies.
struct StageOptions: Sendable, Equatable {
    static let defaultStudentPreset = "student-small"

    // Distillation
    var kdAlpha = 0.7
    var kdTemperature = 4.0
    var kdMethod: KDMethod = .logit
    var hiddenLossWeight = 0.3
    var attentionLossWeight = 0.2
    var studentPath: String?
    var studentPreset = StageOptions.defaultStudentPreset
    /// `--student_init teacher`: build the student from the teacher's layers.
    var studentInitFromTeacher = false
    var studentLayers: [Int]?
    var studentHiddenSize = 256

    // Pruning
    var pruneMethod = "magnitude"
    var pruneSparsity = 0.5
    /// Passed as the method's `schedule` option when given.
    var pruneSchedule: PruneScheduleName?
    var pruneStartEpoch: Int?
    var pruneEndEpoch: Int?
    var pruneFrequency: Int?
    var pruneLayers: PruneLayers = .all
    var calibSamples = 512
    var fineTuneAfterPrune = true
    var fineTuneEpochs = 3
    /// Further method options (`--prune_option name=value`).
    var pruneOptions: [String: String] = [:]

    // Quantization
    var quantMethod = "dynamic"
    var quantCalibrationBatches = 100
    /// Further method options (`--quant_option name=value`).
    var quantOptions: [String: String] = [:]

    // Vocabulary trimming (`--trim_vocab`), before pruning and quantization.
    var trimVocab = false
    var trimVocabTopK = 0
    var trimVocabCorpus: String?

    init() {}
}

// MARK: - Recipe

struct Recipe: Sendable {
    /// Where the recipe came from, so errors can point at the line or the CLI option to fix.
    enum Origin: Sendable, Equatable {
        case file(String)
        case pipeline(PipelineName)
    }

    /// Where each stage (and each of its keys) sits in a recipe file.
    struct StageLocation: Sendable, Equatable {
        var line: Int?
        var keyLines: [String: Int] = [:]
    }

    /// The run's name in artifact file names (`pipeline_summary_<name>.csv`): the `--pipeline` name,
    /// the recipe's `name:` key, or the recipe file's name without its extension.
    var name: String
    var origin: Origin
    var stages: [RecipeStage]
    /// Parallel to `stages`; lines are nil for built-in recipes.
    var locations: [StageLocation]

    init(name: String, origin: Origin, stages: [RecipeStage], locations: [StageLocation]? = nil) {
        self.name = name
        self.origin = origin
        self.stages = stages
        self.locations = locations ?? stages.map { _ in StageLocation() }
    }

    // MARK: Built-in recipes

    /// The stages of a `--pipeline` name, in the seed framework's order: baseline, then distill,
    /// prune and quantize for each part the name contains.
    static func builtIn(_ pipeline: PipelineName, from options: StageOptions = StageOptions()) throws -> Recipe {
        var stages: [RecipeStage] = [.baseline]
        if pipeline.includesDistillation {
            let student: StudentSource
            if options.studentInitFromTeacher {
                guard options.studentPath == nil else {
                    throw RecipeError("--pipeline \(pipeline.rawValue): --student_init teacher and --student_path both choose the student; give one")
                }
                student = .teacherLayers(options.studentLayers)
            } else if let path = options.studentPath {
                student = .path(path)
            } else {
                student = .preset(options.studentPreset)
            }
            if options.studentLayers != nil, !options.studentInitFromTeacher {
                throw RecipeError("--pipeline \(pipeline.rawValue): --student_layers needs --student_init teacher")
            }
            stages.append(.distill(DistillStage(
                alpha: options.kdAlpha, temperature: options.kdTemperature, method: options.kdMethod,
                hiddenLossWeight: options.hiddenLossWeight, attentionLossWeight: options.attentionLossWeight,
                student: student, studentHiddenSize: options.studentHiddenSize)))
        }
        if options.trimVocab {
            stages.append(.trimVocab(TrimVocabStage(topK: options.trimVocabTopK, corpus: options.trimVocabCorpus)))
        }
        if pipeline.includesPruning {
            var methodOptions = options.pruneOptions
            if let schedule = options.pruneSchedule { methodOptions["schedule"] = schedule.rawValue }
            stages.append(.prune(PruneStage(
                method: options.pruneMethod, sparsity: options.pruneSparsity, layers: options.pruneLayers,
                calibSamples: options.calibSamples, fineTune: options.fineTuneAfterPrune,
                fineTuneEpochs: options.fineTuneEpochs, options: methodOptions,
                startEpoch: options.pruneStartEpoch, endEpoch: options.pruneEndEpoch,
                frequency: options.pruneFrequency)))
        }
        if pipeline.includesQuantization {
            stages.append(.quantize(QuantizeStage(
                method: options.quantMethod, calibrationBatches: options.quantCalibrationBatches,
                options: options.quantOptions)))
        }
        return Recipe(name: pipeline.rawValue, origin: .pipeline(pipeline), stages: stages)
    }

    // MARK: Names of the models

    /// What the model is after stage `index`: `teacher` until a distill stage, `student` after it,
    /// preceded by `pruned` once a prune stage ran and by `quantized` once a quantize stage ran —
    /// `teacher`, `student`, `pruned_student`, `quantized_pruned_student`, `quantized_teacher`, …
    func modelTag(afterStage index: Int) -> String {
        let done = stages.prefix(index + 1)
        var words: [String] = []
        if done.contains(where: { if case .quantize = $0 { true } else { false } }) { words.append("quantized") }
        if done.contains(where: { if case .prune = $0 { true } else { false } }) { words.append("pruned") }
        if done.contains(where: { if case .trimVocab = $0 { true } else { false } }) { words.append("trimmed") }
        words.append(done.contains(where: { if case .distill = $0 { true } else { false } }) ? "student" : "teacher")
        return words.joined(separator: "_")
    }

    /// The folder of the deployable model: `final_` + the model tag after the last stage, e.g.
    /// `final_quantized_pruned_student` for baseline → distill → prune → quantize, `final_teacher` for
    /// a baseline alone. Several prune stages still make one `pruned`.
    var stageTag: String { "final_" + modelTag(afterStage: stages.count - 1) }

    /// A unique label per stage for summary rows and per-stage artifacts: `baseline`, `distill`,
    /// `prune_<method>`, `quantize_<method>`; a label that repeats gets `_2`, `_3`, … on its later uses.
    var stageLabels: [String] {
        var seen: [String: Int] = [:]
        return stages.map { stage in
            let base = switch stage {
            case .baseline, .distill: stage.name
            case .prune(let prune): "prune_" + prune.method
            case .quantize(let quantize): "quantize_" + quantize.method
            case .trimVocab: stage.name
            }
            seen[base, default: 0] += 1
            return seen[base]! == 1 ? base : "\(base)_\(seen[base]!)"
        }
    }

    // MARK: Error locations

    /// An error at stage `index`, about `key` when given (a recipe key such as `sparsity`, or
    /// `options.<name>` for a method option). `problem` follows the key's display name, which is the
    /// key in a file and the CLI option for a built-in recipe.
    func error(stage index: Int, key: String? = nil, _ problem: (_ keyName: String) -> String) -> RecipeError {
        let stageName = stages.indices.contains(index) ? stages[index].name : "?"
        switch origin {
        case .file(let path):
            let location = locations.indices.contains(index) ? locations[index] : StageLocation()
            let line = key.flatMap { location.keyLines[$0] } ?? location.line
            let place = line.map { "\(path):\($0)" } ?? path
            // A method option is shown as `options`; the message names the option itself.
            let keyName = key.map { $0.hasPrefix("options.") ? "options" : $0 } ?? stageName
            return RecipeError("\(place): stage \(index + 1) (\(stageName)): \(problem(keyName))")
        case .pipeline(let pipeline):
            let names = Self.commandLineNames[stageName] ?? [:]
            let flag = key.flatMap { names[$0] ?? ($0.hasPrefix("options.") ? names["options"] : nil) }
                ?? key.map { "\(stageName) \($0)" } ?? stageName
            return RecipeError("--pipeline \(pipeline.rawValue): \(problem(flag))")
        }
    }

    /// The CLI option behind each key of a built-in recipe's stages.
    static let commandLineNames: [String: [String: String]] = [
        "distill": ["alpha": "--kd_alpha", "temperature": "--kd_temperature", "method": "--kd_method",
                    "hidden_loss_weight": "--hidden_loss_weight", "attention_loss_weight": "--attention_loss_weight",
                    "student_path": "--student_path", "student_preset": "--student_preset",
                    "student_init": "--student_init", "student_layers": "--student_layers",
                    "student_hidden_size": "--student_hidden_size"],
        "prune": ["method": "--prune_method", "sparsity": "--prune_sparsity", "layers": "--prune_layers",
                  "calib_samples": "--calib_samples", "fine_tune": "--fine_tune_after_prune",
                  "fine_tune_epochs": "--fine_tune_epochs", "start_epoch": "--prune_start_epoch",
                  "end_epoch": "--prune_end_epoch", "frequency": "--prune_frequency",
                  "options": "--prune_option", "options.schedule": "--prune_schedule"],
        "quantize": ["method": "--quant_method", "calibration_batches": "--quant_calibration_batches",
                     "options": "--quant_option"],
        "trim_vocab": ["top_k": "--trim_vocab_top_k", "corpus": "--trim_vocab_corpus"],
    ]
}

// MARK: - Reading a recipe file

extension Recipe {
    /// The keys each stage accepts in a recipe file.
    static let stageKeys: [String: [String]] = [
        "baseline": [],
        "distill": ["alpha", "temperature", "method", "hidden_loss_weight", "attention_loss_weight",
                    "student_preset", "student_path", "student_init", "student_layers", "student_hidden_size"],
        "prune": ["method", "sparsity", "layers", "calib_samples", "fine_tune", "fine_tune_epochs", "options",
                  "start_epoch", "end_epoch", "frequency"],
        "quantize": ["method", "calibration_batches", "options"],
        "trim_vocab": ["top_k", "corpus"],
    ]
    static let topLevelKeys = ["name", "stages"]

    /// Reads and parses a recipe file (not yet validated against the plugins: see `validate`).
    static func load(contentsOf url: URL) throws -> Recipe {
        let data: Data
        do { data = try InputFile.read(url) } catch {
            let reason = (error as? InputFile.NotRegular)?.errorDescription
                ?? ((error as NSError).code == NSFileReadNoSuchFileError ? "no such file" : "cannot be read")
            throw RecipeError("\(url.path): recipe \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError("\(url.path): recipe is not UTF-8 text")
        }
        return try parse(yaml: text, file: url.path,
                         defaultName: url.deletingPathExtension().lastPathComponent)
    }

    /// Parses recipe YAML. `file` names the source in errors; `defaultName` is the run's name when the
    /// recipe has no `name:`.
    static func parse(yaml: String, file: String, defaultName: String = "recipe") throws -> Recipe {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch let error as YamlError {
            throw RecipeError("\(file):\(Self.oneLine(error))")
        }
        guard let root, root.null == nil else {
            throw RecipeError("\(file): the recipe is empty; it needs a 'stages:' list starting with baseline")
        }
        guard let top = root.mapping else {
            throw RecipeError("\(file):\(line(root)): a recipe is a mapping with a 'stages:' list")
        }
        var name = defaultName
        var stageList: Node.Sequence?
        for (keyNode, value) in top {
            let key = keyNode.string ?? ""
            switch key {
            case "name":
                guard let text = value.scalar?.string, isArtifactName(text) else {
                    throw RecipeError("\(file):\(line(keyNode)): name must be letters, digits, '-', '_' or '.' (it becomes part of file names)")
                }
                name = text
            case "stages":
                guard let sequence = value.sequence else {
                    throw RecipeError("\(file):\(line(keyNode)): stages must be a list, e.g. '- baseline: {}'")
                }
                stageList = sequence
            default:
                throw RecipeError("\(file):\(line(keyNode)): unknown key '\(key)' (known: \(topLevelKeys.joined(separator: ", ")))")
            }
        }
        guard let stageList else {
            throw RecipeError("\(file): the recipe has no 'stages:' list")
        }

        var recipe = Recipe(name: name, origin: .file(file), stages: [], locations: [])
        for (index, item) in stageList.enumerated() {
            let (stage, location) = try parseStage(item, index: index, file: file)
            recipe.stages.append(stage)
            recipe.locations.append(location)
        }
        return recipe
    }

    /// One stage: `- name: {key: value, …}`, `- name:` or `- name`.
    private static func parseStage(_ item: Node, index: Int, file: String) throws -> (RecipeStage, StageLocation) {
        let itemLine = line(item)
        let stageName: String
        var body: Node.Mapping?
        var bodyLine = itemLine
        if let scalar = item.scalar {
            stageName = scalar.string
        } else if let mapping = item.mapping, mapping.count == 1, let (keyNode, value) = mapping.first {
            stageName = keyNode.string ?? ""
            bodyLine = line(keyNode)
            if value.null == nil {
                guard let values = value.mapping else {
                    throw RecipeError("\(file):\(line(value)): stage \(index + 1) (\(stageName)): its options must be a mapping, e.g. {sparsity: 0.5}")
                }
                body = values
            }
        } else {
            throw RecipeError("\(file):\(itemLine): stage \(index + 1): expected one stage name with its options, e.g. '- prune: {method: wanda, sparsity: 0.3}'")
        }
        guard let known = stageKeys[stageName] else {
            throw RecipeError("\(file):\(bodyLine): stage \(index + 1): unknown stage '\(stageName)' (known: \(RecipeStage.names.joined(separator: ", ")))")
        }
        var reader = StageReader(file: file, index: index, stage: stageName, location: StageLocation(line: bodyLine))
        for (keyNode, value) in body ?? [:] {
            let key = keyNode.string ?? ""
            guard known.contains(key) else {
                let list = known.isEmpty ? "baseline takes no keys; its training options come from the command line"
                                         : "known: \(known.joined(separator: ", "))"
                throw RecipeError("\(file):\(line(keyNode)): stage \(index + 1) (\(stageName)): unknown key '\(key)' (\(list))")
            }
            reader.values[key] = value
            reader.location.keyLines[key] = line(keyNode)
            for (optionNode, _) in key == "options" ? value.mapping ?? [:] : [:] {
                reader.location.keyLines["options." + (optionNode.string ?? "")] = line(optionNode)
            }
        }
        return (try reader.makeStage(), reader.location)
    }

    /// Reads one stage's keys into typed values; a value of the wrong type is an error naming the key.
    private struct StageReader {
        let file: String
        let index: Int
        let stage: String
        var location: StageLocation
        var values: [String: Node] = [:]

        init(file: String, index: Int, stage: String, location: StageLocation) {
            self.file = file
            self.index = index
            self.stage = stage
            self.location = location
        }

        func fail(_ key: String, _ problem: String) -> RecipeError {
            let line = location.keyLines[key] ?? location.line ?? 0
            return RecipeError("\(file):\(line): stage \(index + 1) (\(stage)): \(key) \(problem)")
        }

        func text(_ node: Node) -> String { node.scalar?.string ?? "a \(node.mapping != nil ? "mapping" : "list")" }

        func number(_ key: String) throws -> Double? {
            guard let node = values[key] else { return nil }
            guard node.scalar != nil, let value = node.float else { throw fail(key, "must be a number, got '\(text(node))'") }
            return value
        }

        func integer(_ key: String) throws -> Int? {
            guard let node = values[key] else { return nil }
            guard node.scalar != nil, let value = node.int else { throw fail(key, "must be an integer, got '\(text(node))'") }
            return value
        }

        func flag(_ key: String) throws -> Bool? {
            guard let node = values[key] else { return nil }
            guard node.scalar != nil, let value = node.bool else { throw fail(key, "must be true or false, got '\(text(node))'") }
            return value
        }

        func string(_ key: String) throws -> String? {
            guard let node = values[key] else { return nil }
            guard let scalar = node.scalar, node.null == nil, !scalar.string.isEmpty else {
                throw fail(key, "must be a name, got '\(text(node))'")
            }
            return scalar.string
        }

        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
            guard let raw = try string(key) else { return nil }
            guard let value = T(rawValue: raw) else {
                throw fail(key, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(raw)'")
            }
            return value
        }

        func integerList(_ key: String) throws -> [Int]? {
            guard let node = values[key] else { return nil }
            guard let items = node.sequence else { throw fail(key, "must be a list of integers, e.g. [0, 2, 4]") }
            return try items.map { item in
                guard item.scalar != nil, let value = item.int else {
                    throw fail(key, "must be a list of integers, got '\(text(item))' in it")
                }
                return value
            }
        }

        /// `options: {name: value, …}`: scalar values kept as written, for the plugin's schema to check.
        func methodOptions() throws -> [String: String] {
            guard let node = values["options"] else { return [:] }
            if node.null != nil { return [:] }
            guard let mapping = node.mapping else { throw fail("options", "must be a mapping of method options, e.g. {group_size: 32}") }
            var options: [String: String] = [:]
            for (keyNode, value) in mapping {
                let name = keyNode.string ?? ""
                guard let scalar = value.scalar, value.null == nil else {
                    throw fail("options", "'\(name)' must have a single value, got '\(text(value))'")
                }
                options[name] = scalar.string
            }
            return options
        }

        func makeStage() throws -> RecipeStage {
            switch stage {
            case "baseline":
                return .baseline
            case "distill":
                var distill = DistillStage()
                distill.alpha = try number("alpha") ?? distill.alpha
                distill.temperature = try number("temperature") ?? distill.temperature
                distill.method = try choice("method", KDMethod.self) ?? distill.method
                distill.hiddenLossWeight = try number("hidden_loss_weight") ?? distill.hiddenLossWeight
                distill.attentionLossWeight = try number("attention_loss_weight") ?? distill.attentionLossWeight
                distill.studentHiddenSize = try integer("student_hidden_size") ?? distill.studentHiddenSize
                let preset = try string("student_preset"), path = try string("student_path")
                let initFrom = try string("student_init"), layers = try integerList("student_layers")
                if let initFrom, initFrom != "teacher" {
                    throw fail("student_init", "must be teacher (a preset or a folder is chosen with student_preset or student_path), got '\(initFrom)'")
                }
                let chosen = [preset.map { _ in "student_preset" }, path.map { _ in "student_path" },
                              initFrom.map { _ in "student_init" }].compactMap { $0 }
                if chosen.count > 1 {
                    throw fail(chosen[1], "and \(chosen[0]) both choose the student; keep one")
                }
                if layers != nil, initFrom == nil {
                    throw fail("student_layers", "needs student_init: teacher")
                }
                if initFrom != nil { distill.student = .teacherLayers(layers) }
                else if let path { distill.student = .path(path) }
                else if let preset { distill.student = .preset(preset) }
                return .distill(distill)
            case "prune":
                var prune = PruneStage()
                prune.method = try string("method") ?? prune.method
                prune.sparsity = try number("sparsity") ?? prune.sparsity
                prune.layers = try choice("layers", PruneLayers.self) ?? prune.layers
                prune.calibSamples = try integer("calib_samples") ?? prune.calibSamples
                prune.fineTune = try flag("fine_tune") ?? prune.fineTune
                prune.fineTuneEpochs = try integer("fine_tune_epochs") ?? prune.fineTuneEpochs
                prune.options = try methodOptions()
                prune.startEpoch = try integer("start_epoch")
                prune.endEpoch = try integer("end_epoch")
                prune.frequency = try integer("frequency")
                return .prune(prune)
            case "trim_vocab":
                var trim = TrimVocabStage()
                trim.topK = try integer("top_k") ?? trim.topK
                trim.corpus = try string("corpus")
                return .trimVocab(trim)
            default:
                var quantize = QuantizeStage()
                quantize.method = try string("method") ?? quantize.method
                quantize.calibrationBatches = try integer("calibration_batches") ?? quantize.calibrationBatches
                quantize.options = try methodOptions()
                return .quantize(quantize)
            }
        }
    }

    private static func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    static func isArtifactName(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".." &&
            text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// Yams reports problems over several lines (with a snippet); keep `line:column: problem`.
    private static func oneLine(_ error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let context = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return "\(mark.line):\(mark.column): YAML syntax error: \(problem)\(context)"
        case let .duplicatedKeysInMapping(duplicates, context):
            return "\(context.mark.line): duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", "))"
        default:
            return " YAML error: \(error)"
        }
    }
}

// MARK: - Validation

/// A compression method as validation needs it: name, kind and declared options. The plugin registry
/// is one; tests may bring their own.
struct MethodSchema: Sendable, Equatable {
    var name: String
    var kind: PluginMethodKind
    var plugin: String
    var version: String
    var options: [PluginOptionSpec]
}

/// Whatever knows the registered methods.
protocol MethodCatalog {
    var methodSchemas: [MethodSchema] { get }
}

extension PluginRegistry: MethodCatalog {
    var methodSchemas: [MethodSchema] {
        methods.map { MethodSchema(name: $0.name, kind: $0.kind, plugin: $0.pluginName, version: $0.version, options: $0.options) }
    }
}

/// The method a prune or quantize stage will call, with every option resolved (the given ones and
/// the declared defaults, in declared order): what provenance records.
struct ResolvedMethod: Sendable, Equatable {
    var schema: MethodSchema
    var options: [String: String]
    var orderedOptions: [(name: String, value: String)] {
        schema.options.map { ($0.name, options[$0.name] ?? $0.defaultValue) }
    }
}

extension Recipe {
    /// Checks everything that can be checked before work starts: stage order, option values, method
    /// names against `methods`, and method options against each method's schema. Returns the resolved
    /// method of each stage (nil for baseline and distill). The first problem, in stage order, is thrown.
    @discardableResult
    func validate(methods catalog: MethodCatalog) throws -> [ResolvedMethod?] {
        let schemas = catalog.methodSchemas
        guard !stages.isEmpty else {
            switch origin {
            case .file(let path): throw RecipeError("\(path): the recipe has no stages; it needs at least baseline")
            case .pipeline(let name): throw RecipeError("--pipeline \(name.rawValue): no stages")
            }
        }
        var resolved: [ResolvedMethod?] = []
        for (index, stage) in stages.enumerated() {
            try checkOrder(of: index)
            switch stage {
            case .baseline:
                resolved.append(nil)
            case .distill(let distill):
                try check(distill, at: index)
                resolved.append(nil)
            case .prune(let prune):
                resolved.append(try check(prune, at: index, schemas: schemas))
            case .quantize(let quantize):
                resolved.append(try check(quantize, at: index, schemas: schemas))
            case .trimVocab(let trim):
                guard trim.topK >= 0 else { throw error(stage: index, key: "top_k") { "\($0) must be ≥ 0, got \(trim.topK)" } }
                if trim.topK > 0, trim.corpus == nil {
                    throw error(stage: index, key: "top_k") { "\($0) needs a corpus to count tokens in" }
                }
                resolved.append(nil)
            }
        }
        return resolved
    }

    /// Baseline first and only first; distill before any prune or quantize, at most once; nothing
    /// after quantize.
    private func checkOrder(of index: Int) throws {
        let stage = stages[index]
        let earlier = stages[..<index]
        func firstEarlier(_ names: Set<String>) -> Int? { earlier.firstIndex { names.contains($0.name) } }
        if index == 0 {
            guard case .baseline = stage else {
                throw error(stage: index) { _ in "the first stage must be baseline (it trains the teacher every later stage starts from)" }
            }
            return
        }
        if case .baseline = stage {
            throw error(stage: index) { _ in "baseline can only be the first stage" }
        }
        if let quantized = firstEarlier(["quantize"]) {
            let what = switch stage {
            case .quantize: "a second quantize stage: a model is quantized once"
            case .prune: "prune after quantize is impossible: quantized weights cannot be pruned and healed"
            default: "\(stage.name) after quantize is impossible: quantize must be the last stage"
            }
            throw error(stage: index) { _ in "\(what) (stage \(quantized + 1) is quantize)" }
        }
        if case .distill = stage {
            if let previous = firstEarlier(["distill"]) {
                throw error(stage: index) { _ in "only one distill stage is supported (stage \(previous + 1) is distill)" }
            }
            if let pruned = firstEarlier(["prune"]) {
                throw error(stage: index) { _ in "distill must come before prune and quantize (stage \(pruned + 1) is prune): the student is trained from scratch or from the unpruned teacher" }
            }
        }
    }

    private func check(_ distill: DistillStage, at index: Int) throws {
        func fail(_ key: String, _ text: String) -> RecipeError { error(stage: index, key: key) { "\($0) \(text)" } }
        guard distill.alpha.isFinite, (0...1).contains(distill.alpha) else {
            throw fail("alpha", "must be in [0, 1], got \(distill.alpha)")
        }
        guard distill.temperature.isFinite, distill.temperature > 0 else {
            throw fail("temperature", "must be positive, got \(distill.temperature)")
        }
        guard distill.hiddenLossWeight.isFinite, distill.hiddenLossWeight >= 0 else {
            throw fail("hidden_loss_weight", "must be ≥ 0, got \(distill.hiddenLossWeight)")
        }
        guard distill.attentionLossWeight.isFinite, distill.attentionLossWeight >= 0 else {
            throw fail("attention_loss_weight", "must be ≥ 0, got \(distill.attentionLossWeight)")
        }
        guard distill.studentHiddenSize > 0 else {
            throw fail("student_hidden_size", "must be positive, got \(distill.studentHiddenSize)")
        }
        switch distill.student {
        case .teacherLayers(let layers?):
            guard !layers.isEmpty else { throw fail("student_layers", "must name at least one teacher layer") }
            guard layers.allSatisfy({ $0 >= 0 }), zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw fail("student_layers", "must be teacher layer indices from 0, increasing, got \(layers)")
            }
        case .path(let path) where path.isEmpty:
            throw fail("student_path", "is empty")
        case .preset(let name) where name.isEmpty:
            throw fail("student_preset", "is empty")
        default:
            break
        }
    }

    private func check(_ prune: PruneStage, at index: Int, schemas: [MethodSchema]) throws -> ResolvedMethod {
        func fail(_ key: String, _ text: String) -> RecipeError { error(stage: index, key: key) { "\($0) \(text)" } }
        guard prune.sparsity.isFinite, prune.sparsity >= 0, prune.sparsity < 1 else {
            throw fail("sparsity", "must be in [0, 1), got \(prune.sparsity)")
        }
        guard prune.calibSamples > 0 else { throw fail("calib_samples", "must be positive, got \(prune.calibSamples)") }
        guard prune.fineTuneEpochs >= (prune.fineTune ? 1 : 0) else {
            throw fail("fine_tune_epochs", "must be at least \(prune.fineTune ? 1 : 0), got \(prune.fineTuneEpochs)")
        }
        let method = try lookUp(prune.method, kinds: [.pruner, .schedule], in: schemas, stage: index)
        if method.kind == .schedule {
            guard prune.fineTune else {
                throw fail("fine_tune", "must be true for the schedule method '\(method.name)': it prunes while fine-tuning")
            }
            let window = prune.scheduleWindow
            guard window.startEpoch >= 0 else { throw fail("start_epoch", "must be ≥ 0, got \(window.startEpoch)") }
            guard window.endEpoch >= window.startEpoch else {
                throw fail("end_epoch", "must be ≥ start_epoch (\(window.startEpoch)), got \(window.endEpoch)")
            }
            guard window.endEpoch < prune.fineTuneEpochs else {
                throw fail("end_epoch", "must be below fine_tune_epochs (\(prune.fineTuneEpochs); epochs count from 0), got \(window.endEpoch)")
            }
            guard window.frequency > 0 else { throw fail("frequency", "must be positive, got \(window.frequency)") }
        } else {
            let scheduleKeys: [(String, Int?)] = [("start_epoch", prune.startEpoch), ("end_epoch", prune.endEpoch), ("frequency", prune.frequency)]
            if let (key, _) = scheduleKeys.first(where: { $0.1 != nil }) {
                throw fail(key, "applies only to schedule methods such as gradual; '\(method.name)' is a pruner")
            }
        }
        // Options the pruning stage reads itself (scope, structure) apply to every method.
        var methodOptions = prune.options
        var hostOptions: [String: String] = [:]
        for (name, choices) in PruningStage.hostOptions {
            guard let value = methodOptions.removeValue(forKey: name) else { continue }
            guard choices.contains(value) else {
                throw error(stage: index, key: "options.\(name)") { "\($0): option '\(name)' must be one of \(choices.joined(separator: ", ")), got '\(value)'" }
            }
            hostOptions[name] = value
        }
        // Whole units need the layers that hold them: refused here, not after a trained baseline.
        if let structure = hostOptions["structure"].flatMap(PruningPlan.Structure.init(rawValue:)) {
            let holdsHeads = ![PruneLayers.ffn, .embeddings].contains(prune.layers)
            let holdsFFN = ![PruneLayers.attention, .embeddings].contains(prune.layers)
            if structure.removesHeads && !holdsHeads || structure.removesFFN && !holdsFFN {
                throw fail("layers", "\(prune.layers.rawValue) holds no \(structure.removesHeads && !holdsHeads ? "attention heads" : "FFN neurons") for structure=\(structure.rawValue)")
            }
        }
        var resolved = try resolve(methodOptions, for: method, stage: index)
        resolved.options.merge(hostOptions) { method, _ in method }
        // A schedule delegates scoring to a named criterion: it must be a registered pruner.
        if method.kind == .schedule, let criterion = resolved.options["criterion"] {
            let pruners = schemas.filter { $0.kind == .pruner }.map(\.name)
            guard pruners.contains(criterion) else {
                throw error(stage: index, key: "options.criterion") {
                    "\($0): '\(criterion)' is not a registered pruner (known: \(pruners.joined(separator: ", ")))"
                }
            }
        }
        return resolved
    }

    private func check(_ quantize: QuantizeStage, at index: Int, schemas: [MethodSchema]) throws -> ResolvedMethod {
        guard quantize.calibrationBatches > 0 else {
            throw error(stage: index, key: "calibration_batches") { "\($0) must be positive, got \(quantize.calibrationBatches)" }
        }
        let method = try lookUp(quantize.method, kinds: [.quantizer], in: schemas, stage: index)
        return try resolve(quantize.options, for: method, stage: index)
    }

    /// The method called `name` among `kinds`, or an error listing the known methods of those kinds.
    private func lookUp(_ name: String, kinds: [PluginMethodKind], in schemas: [MethodSchema], stage index: Int) throws -> MethodSchema {
        let kindText = kinds.map(\.rawValue).joined(separator: " or ")
        if let method = schemas.first(where: { $0.name == name }) {
            guard kinds.contains(method.kind) else {
                throw error(stage: index, key: "method") { "\($0) '\(name)' is a \(method.kind) (\(method.plugin)), not a \(kindText)" }
            }
            return method
        }
        let known = schemas.filter { kinds.contains($0.kind) }.map(\.name).sorted()
        let list = known.isEmpty ? "no \(kindText) methods are loaded (check --plugin-path and SANKSHEP_PLUGIN_PATH)"
                                 : "known: \(known.joined(separator: ", "))"
        throw error(stage: index, key: "method") { "\($0) '\(name)' is not a registered \(kindText) method; \(list)" }
    }

    /// Checks given method options against the declared schema, as the plugin will receive them.
    private func resolve(_ given: [String: String], for method: MethodSchema, stage index: Int) throws -> ResolvedMethod {
        let declared = method.options.map(\.name)
        for name in given.keys.sorted() where !declared.contains(name) {
            let list = declared.isEmpty ? "it declares no options" : "declared: \(declared.joined(separator: ", "))"
            throw error(stage: index, key: "options.\(name)") {
                "\($0): \(method.kind) method '\(method.name)' has no option '\(name)' (\(list))"
            }
        }
        for spec in method.options {
            if let value = given[spec.name], let problem = spec.problem(with: value) {
                throw error(stage: index, key: "options.\(spec.name)") {
                    "\($0): option '\(spec.name)' of method '\(method.name)': \(problem)"
                }
            }
        }
        var options: [String: String] = [:]
        for spec in method.options { options[spec.name] = given[spec.name] ?? spec.defaultValue }
        return ResolvedMethod(schema: method, options: options)
    }
}
