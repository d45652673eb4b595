import Foundation

// A recipe is the list of stages a run performs, in order, each with its options:
//
//     stages:
//       - baseline: {}
//       - distill: {alpha: 0.7, temperature: 4.0}
//       - prune: {method: wanda, sparsity: 0.3}
//       - prune: {method: gradual, sparsity: 0.6, options: {schedule: cubic}}
//       - quantize: {method: int4, options: {group_size: 32}}
//
// `--recipe FILE.yaml` reads one (RecipeFile.swift); every `--pipeline` name is a built-in recipe made
// from the seed framework's CLI options (`Recipe.builtIn`). Either way the recipe is validated
// completely before any work starts (RecipeValidation.swift), so a typo in the last stage does not
// cost a trained baseline. Every error is one line naming the place (file:line and stage, or the CLI
// option) and the problem. The kinds of stage and their options are declared in Recipe/Stages/ and
// listed in StageCatalog.swift; docs/recipes.md is the user-facing description of the format.

/// A recipe that cannot run: one line naming where and what.
struct RecipeError: Error, CustomStringConvertible, Equatable {
    let message: String
    init(_ message: String) {
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
    var description: String { message }
}

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

    /// The stages of a `--pipeline` name, in catalog order: the baseline, then every stage whose
    /// pipeline word the name contains (`_kd` → distill, `prune`, `quant` → quantize), each built from
    /// the command-line values given for it (`given[stage name][key]`, read by `CommandLineStageOptions`).
    /// `notes` collects what the user should read about how the flags were understood.
    static func builtIn(_ pipeline: PipelineName, given: [String: [String: OptionValue]] = [:],
                        methods: MethodCatalog, notes: inout [String]) throws -> Recipe {
        var stages: [RecipeStage] = []
        for kind in StageCatalog.kinds {
            let included = kind.name == StageCatalog.first.name
                || kind.pipelineWord.map { pipeline.rawValue.contains($0) } ?? false
            guard included else { continue }
            stages.append(RecipeStage(try kind.fromCommandLine(given[kind.name] ?? [:], methods: methods, notes: &notes)))
        }
        return Recipe(name: pipeline.rawValue, origin: .pipeline(pipeline), stages: stages)
    }

    // MARK: Names of the models

    /// What the model is after stage `index`: `teacher` until a stage makes a new model (distill:
    /// `student`), preceded by the words of the stages that changed it, latest kind first —
    /// `teacher`, `student`, `pruned_student`, `quantized_pruned_student`, `quantized_teacher`, …
    func modelTag(afterStage index: Int) -> String {
        let done = Set(stages.prefix(index + 1).map(\.name))
        var adjectives: [String] = []
        var noun = "teacher"
        for kind in StageCatalog.kinds where done.contains(kind.name) {
            switch kind.modelWord {
            case .adjective(let word): adjectives.insert(word, at: 0)
            case .noun(let word): noun = word
            case nil: break
            }
        }
        return (adjectives + [noun]).joined(separator: "_")
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
            let base = stage.label
            let count = (seen[base] ?? 0) + 1
            seen[base] = count
            return count == 1 ? base : "\(base)_\(count)"
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
            let flags = Self.commandLineFlags(of: stageName)
            let flag = key.flatMap { flags[$0] ?? ($0.hasPrefix("options.") ? flags["options"] : nil) }
                ?? key.map { "\(stageName) \($0)" } ?? stageName
            return RecipeError("--pipeline \(pipeline.rawValue): \(problem(flag))")
        }
    }

    /// The CLI flag of each key of a stage kind, from its declaration.
    static func commandLineFlags(of stageName: String) -> [String: String] {
        guard let kind = StageCatalog.kind(named: stageName) else { return [:] }
        return kind.commandLineFlags
    }
}

extension StageDeclaration {
    /// Key → `--flag` for every option that has a flag.
    static var commandLineFlags: [String: String] {
        var flags: [String: String] = [:]
        // A command-line spelling of another key (`--prune_schedule`) is not where a problem with that key is named.
        for option in options where option.inRecipes { if let flag = option.flagName { flags[option.key] = flag } }
        return flags
    }

    /// The first declared option whose value breaks its kind or rule, with the problem.
    var firstValueProblem: (key: String, problem: String)? {
        for option in Self.options {
            if let value = option.read(self), let problem = option.problem(with: value) { return (option.key, problem) }
        }
        return nil
    }

    func isEqual(to other: any StageDeclaration) -> Bool { (other as? Self) == self }

    /// The keys a recipe file accepts, in declared order.
    static var recipeKeys: [String] { options.filter(\.inRecipes).map(\.key) }
}
